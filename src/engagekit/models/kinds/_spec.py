"""What every model kind provides, and the small records its steps hand back."""

from __future__ import annotations

import math
import numbers
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, TypeGuard

import numpy as np

from ...choices import ModelKind
from .._fit_record import EarlyStopping, FitRecord, TuningStatus

if TYPE_CHECKING:
    from .._model import EngagementModel

__all__ = ["CHUNK_ROWS", "HoldOut", "KindFitSteps", "MarginExplanation", "ModelKindSpec"]

#: Rows explained at a time: bounds the working memory of a large table.
CHUNK_ROWS = 8192


@dataclass(frozen=True)
class HoldOut:
    """The rows of one fit: those the estimator is fitted on, and the held-out ones.

    Attributes
    ----------
    fit_rows : numpy.ndarray of bool
        Labelled rows of the patients not held out.
    held_out_rows : numpy.ndarray of bool
        Labelled rows of the held-out patients (none when too few patients).
    held_out_patient_rows : numpy.ndarray of bool
        Every row of a held-out patient, labelled or not: the features learn nothing
        from them.
    patients : numpy.ndarray
        The patient of every row.
    min_patients : int
        Fewest patients a held-out set may have; with fewer, none is held out.
    """

    fit_rows: np.ndarray
    held_out_rows: np.ndarray
    held_out_patient_rows: np.ndarray
    patients: np.ndarray
    min_patients: int

    @property
    def labelled(self) -> np.ndarray:
        """Every labelled row, held out or not."""
        return self.fit_rows | self.held_out_rows

    @property
    def any_held_out(self) -> bool:
        """Whether any patients were held out."""
        return bool(self.held_out_rows.any())


@dataclass(frozen=True)
class KindFitSteps:
    """What a kind's own fitting steps did, for the model's
    :class:`~engagekit.models.FitRecord`.

    Attributes
    ----------
    tuning : TuningStatus
    early_stopping : EarlyStopping
    boosting_iterations, max_boosting_iterations : int
        Iterations the trees kept, and the most they could have used (0 without trees).
    """

    tuning: TuningStatus
    early_stopping: EarlyStopping
    boosting_iterations: int = 0
    max_boosting_iterations: int = 0


@dataclass(frozen=True)
class MarginExplanation:
    """Exact SHAP values of an estimator's log-odds margin (before recalibration).

    Attributes
    ----------
    base_value : float
        The margin every explanation starts from.
    values : numpy.ndarray
        Rows × features: each feature's contribution to the margin;
        ``base_value + values.sum(axis=1) == margin`` to rounding.
    margin : numpy.ndarray
        The estimator's margin of every row.
    method : str
        How the values were computed (``Explanation.method``).
    """

    base_value: float
    values: np.ndarray
    margin: np.ndarray
    method: str


class ModelKindSpec(ABC):
    """One kind of model: everything engagekit does differently for it.

    :func:`~engagekit.models.fit_model` holds out patients, fits the features and
    checks calibration alike for every kind; it asks the kind for its estimator, its fit
    on the held-out split, and (after the calibration check) whether to refit on every
    patient. :func:`~engagekit.explain.explain_predictions` asks it for exact SHAP values
    of the margin, the model card for its sentences, and :mod:`engagekit.io._model_store`
    for the types a saved estimator of the kind holds. A new kind subclasses this and is
    registered in :data:`engagekit.models.kinds.KINDS`; ``tests/test_model_kinds.py``
    then runs it through fitting, explanation, saving and loading, and the card.

    Attributes
    ----------
    kind : ModelKind
    interaction_terms : bool
        Whether the model's design matrix carries the attribute × treatment terms.
    trusted_types : tuple of str
        Every class a fitted estimator of the kind holds, besides builtins and numpy
        types: a saved model holding anything else is refused.
    card_name : str
        The kind in the model card's title.
    card_description : str
        The model card's sentence on what the model is.
    card_hyperparameters : mapping of str to str
        The kind's tuned hyperparameters, in words.
    card_folds_not_held_out : str
        What did not run in cross-validation when no fold held out patients.
    """

    kind: ClassVar[ModelKind]
    interaction_terms: ClassVar[bool]
    trusted_types: ClassVar[tuple[str, ...]]
    card_name: ClassVar[str]
    card_description: ClassVar[str]
    card_hyperparameters: ClassVar[Mapping[str, str]] = {}
    card_folds_not_held_out: ClassVar[str]

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    @abstractmethod
    def make_estimator(self, seed: int = 0) -> Any:
        """An unfitted scikit-learn estimator of the kind, with its default settings."""

    @abstractmethod
    def fit_on_hold_out(
        self,
        model: EngagementModel,
        X: np.ndarray,
        y: np.ndarray,
        rows: HoldOut,
        seed: int,
    ) -> KindFitSteps:
        """Fit ``model.estimator`` on ``rows.fit_rows``, using the held-out rows as the
        kind needs (tuning, early stopping), and set ``model.tuning``.

        Parameters
        ----------
        model : EngagementModel
            Its features fitted, its estimator from :meth:`make_estimator`.
        X, y : numpy.ndarray
            The design matrix and outcome of every row (NaN where not recorded).
        rows : HoldOut
        seed : int

        Returns
        -------
        KindFitSteps
        """

    def refit_on_all(
        self, model: EngagementModel, X: np.ndarray, y: np.ndarray, rows: HoldOut
    ) -> bool:
        """After the calibration check, refit ``model.estimator`` on every labelled row
        if the kind does; whether it did. By default the fit is kept."""
        return False

    @abstractmethod
    def explain(
        self, estimator: Any, X: np.ndarray, *, n_threads: int = 1, chunk_rows: int = CHUNK_ROWS
    ) -> MarginExplanation:
        """Exact SHAP values of a fitted estimator's margin for every row of ``X``.

        ``n_threads`` may share the work; ``chunk_rows`` bounds the working memory.
        Neither changes the values.
        """

    def coefficients(self, estimator: Any, feature_names: Sequence[str]) -> Any:
        """The model's terms, for kinds that have them.

        Raises
        ------
        ValueError
            The kind has no coefficients.
        """
        raise ValueError(f"a {self.kind.value!r} model has no coefficients; use explanations")

    @abstractmethod
    def card_fit_sentences(self, record: FitRecord) -> tuple[str, ...]:
        """The card's sentences on the kind's own fitting steps, from a
        :class:`~engagekit.models.FitRecord`."""

    def card_sentences_after_calibration(self, record: FitRecord) -> tuple[str, ...]:
        """The card's sentences on what the kind did after the calibration check."""
        return ()

    @abstractmethod
    def card_folds_step(self, folds: Sequence[FitRecord]) -> tuple[str, int]:
        """The kind's step in the fold models' fits, as ``(words, folds that ran it)``;
        the card says ``f"{words} {n} of the {k} folds"``."""


def row_chunks(n_rows: int, chunk_rows: int) -> list[slice]:
    """Consecutive slices of at most ``chunk_rows`` rows covering ``n_rows``.

    >>> row_chunks(5, 2)
    [slice(0, 2, None), slice(2, 4, None), slice(4, 5, None)]
    """
    if int(chunk_rows) != chunk_rows or chunk_rows < 1:
        raise ValueError(f"'chunk_rows' must be a positive integer; got {chunk_rows!r}")
    return [slice(i, min(i + chunk_rows, n_rows)) for i in range(0, n_rows, chunk_rows)]


def whole_number(value: Any) -> str:
    """A count in a card sentence: thousands separators, or a dash when not recorded.

    >>> whole_number(1234), whole_number(None)
    ('1,234', '–')
    """
    return f"{int(value):,}" if is_finite_number(value) else "–"


def is_finite_number(value: Any) -> TypeGuard[float]:
    """Whether a recorded value is a finite real number (a bool is not one)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
