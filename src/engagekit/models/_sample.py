"""Training on a patient-level random sample of a large table.

Above a few million encounters a model gains almost nothing from more rows (the
saturation curve of ``benchmarks/README.md``: at 1 million encounters the AUROC is
0.9993 of the oracle's), while fitting, cross-validating and bootstrapping all of them
costs hours and gigabytes. :func:`sample_for_training` therefore keeps a random sample of
whole patients to train on, and a second random set of the other patients to validate
the final model on (:class:`HeldOutSample`, which
:func:`~engagekit.models.train_model` takes as ``held_out``).

Whether a patient is drawn is decided by :func:`patient_sample_mask` from a seeded hash
of the patient's id alone, never from a random generator run over the list of patients:
the same patient is drawn the same way whatever else the frame holds, so a table read
chunk by chunk gives the same sample as the table read whole.
"""

from __future__ import annotations

import hashlib
import numbers
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from pandas.api.extensions import ExtensionArray

from ..errors import ArgumentError

__all__ = [
    "SAMPLE_ABOVE",
    "SAMPLE_ROWS",
    "VALIDATION_ROWS",
    "HeldOutSample",
    "patient_sample_mask",
    "sample_for_training",
]

#: Encounters above which ``engagekit train`` fits on a sample of patients (0: never).
SAMPLE_ABOVE = 2_000_000
#: Encounters the training sample holds, about.
SAMPLE_ROWS = 1_000_000
#: Encounters of patients outside the sample the final model is validated on, about:
#: enough for an AUROC's 95% CI a few thousandths wide, and half the memory of the
#: training sample's, so that training a 10-million-encounter table stays under 4 GB.
VALIDATION_ROWS = 500_000

# the uniform draw is the top 53 bits of the 64-bit hash: a double holds 53 exactly
_UNIFORM_BITS = 53


def patient_sample_mask(
    patient_ids: Any, share: float, seed: int, *, salt: str = "sample"
) -> np.ndarray:
    """Which rows belong to patients drawn into a random sample of about ``share`` of
    the patients.

    Each patient is drawn or not from a keyed hash (SipHash, :func:`pandas.util.hash_array`)
    of its id's text, with a key made of ``seed`` and ``salt``, mapped to a uniform number
    in [0, 1) and kept when below ``share``. The draw of a patient thus depends on its id,
    the seed and the salt only: all of a patient's rows are drawn together, and the mask
    of part of a table is that part of the table's mask (a table read in chunks gets the
    same sample as read whole). Ids are compared as stripped text, as the data contract
    compares them (``" P1"`` is ``"P1"``).

    Parameters
    ----------
    patient_ids : array-like
        One patient id per row.
    share : float
        The expected share of patients drawn, in [0, 1].
    seed : int
        Another seed draws another sample.
    salt : str, default "sample"
        Names the draw, so that draws with the same seed (the training sample, the
        validation set) are independent of each other.

    Returns
    -------
    numpy.ndarray of bool
        True for the rows of the patients drawn.

    Raises
    ------
    ArgumentError
        ``share`` is not a number between 0 and 1.

    Examples
    --------
    >>> ids = ["P1", "P1", "P2", "P3", " P2"]
    >>> mask = patient_sample_mask(ids, 0.5, seed=0)
    >>> bool(mask[0] == mask[1]), bool(mask[2] == mask[4])
    (True, True)
    >>> patient_sample_mask(ids[3:], 0.5, seed=0).tolist() == mask[3:].tolist()
    True
    >>> none, every = patient_sample_mask(ids, 0.0, seed=0), patient_sample_mask(ids, 1.0, seed=0)
    >>> bool(none.any()), bool(every.all())
    (False, True)
    >>> patient_sample_mask(ids, 1.5, seed=0)
    Traceback (most recent call last):
    ...
    engagekit.errors.ArgumentError: the share of patients to draw must be between 0 and 1; found 1.5
    """
    if not isinstance(share, numbers.Real) or isinstance(share, bool) or not 0 <= share <= 1:
        raise ArgumentError(
            f"the share of patients to draw must be between 0 and 1; found {share!r}"
        )
    if not isinstance(patient_ids, pd.Series | pd.Index | np.ndarray | ExtensionArray):
        patient_ids = np.asarray(patient_ids, dtype=object)
    codes, patients = pd.factorize(patient_ids)
    # hash each distinct patient once: a 10-million-row table has a few hundred thousand
    texts = pd.Index(patients).astype(str).str.strip().to_numpy(dtype=object)
    hashes = pd.util.hash_array(texts, hash_key=_hash_key(seed, salt), categorize=False)
    uniform = (hashes >> np.uint64(64 - _UNIFORM_BITS)).astype("float64") * 2.0**-_UNIFORM_BITS
    drawn = uniform < share
    mask = np.zeros(len(codes), dtype=bool)
    # a missing id (code -1) is no patient, and never drawn
    known = codes >= 0
    mask[known] = drawn[codes[known]]
    return mask


def _hash_key(seed: int, salt: str) -> str:
    """The 16-character key of the hash, from the seed and the salt."""
    return hashlib.blake2b(f"{salt}:{int(seed)}".encode(), digest_size=8).hexdigest()


@dataclass(frozen=True, eq=False)
class HeldOutSample:
    """Patients of a table left out of the training sample, to validate the model on.

    :func:`sample_for_training` makes one; :func:`~engagekit.models.train_model` takes it
    as ``held_out``, scores the final model on the labelled rows of ``encounters``, and
    records the sample it was fitted on (its size is that of the frame it is given).

    Attributes
    ----------
    encounters : pandas.DataFrame or None
        Typed encounters of patients outside the training sample (all of them, or a
        random set of them), each patient with all its rows; or None, and ``load``
        reads them when they are needed (a streamed table's, kept on disk while the
        model trains: see :meth:`frame`).
    n_encounters, n_patients : int
        Encounters and patients of the whole table the sample was drawn from.
    seed : int
        The seed of the draws.
    sample_above : int or None
        The table size above which the sample was drawn, when a rule drew it.
    """

    encounters: pd.DataFrame | None
    n_encounters: int
    n_patients: int
    seed: int = 0
    sample_above: int | None = None
    load: Callable[[], pd.DataFrame] | None = None

    def frame(self) -> pd.DataFrame:
        """The held-out encounters: ``encounters``, or read by ``load`` afresh at each
        call (so that they take no memory while the model trains)."""
        if self.encounters is not None:
            return self.encounters
        if self.load is None:
            raise ArgumentError("a held-out sample needs its encounters or a way to load them")
        return self.load()

    @property
    def n_validation_encounters(self) -> int:
        """Encounters held out for validation (with an outcome recorded or not)."""
        return len(self.frame())

    @property
    def n_validation_patients(self) -> int:
        """Patients held out for validation."""
        return int(self.frame()["patient_id"].nunique())


def sample_for_training(
    encounters: pd.DataFrame,
    *,
    sample_above: int = SAMPLE_ABOVE,
    sample_rows: int = SAMPLE_ROWS,
    validation_rows: int = VALIDATION_ROWS,
    seed: int = 0,
) -> tuple[pd.DataFrame, HeldOutSample | None]:
    """The encounters to train on and, from a large table, the patients to validate on.

    A table of at most ``sample_above`` encounters is trained on whole. A larger one is
    sampled by patient (:func:`patient_sample_mask`, salt ``"sample"``) with a share of
    ``sample_rows / len(encounters)``, so that the sample holds about ``sample_rows``
    encounters; among the other patients a second draw (salt ``"validation"``), with a
    share of ``validation_rows`` over their encounters, keeps about ``validation_rows``
    encounters to validate on (all of them if they are fewer).

    Parameters
    ----------
    encounters : pandas.DataFrame
        Typed encounters (see :func:`engagekit.coerce_encounters`).
    sample_above : int, default SAMPLE_ABOVE
        Encounters above which to sample; 0: never sample.
    sample_rows : int, default SAMPLE_ROWS
        About how many encounters the training sample holds.
    validation_rows : int, default VALIDATION_ROWS
        About how many encounters of other patients to validate on.
    seed : int, default 0

    Returns
    -------
    (pandas.DataFrame, HeldOutSample or None)
        ``(encounters, None)`` when the table is not sampled (at most ``sample_above``
        encounters, ``sample_above`` 0, or ``sample_rows`` at least the table's size);
        otherwise the sample's encounters (index reset) and the held-out patients.

    Raises
    ------
    ArgumentError
        A size is negative, or ``sample_rows`` or ``validation_rows`` is 0.

    Examples
    --------
    >>> from engagekit import simulate_encounters
    >>> table = simulate_encounters(400, seed=1).encounters
    >>> train, held_out = sample_for_training(table, sample_above=1000, sample_rows=800,
    ...                                       validation_rows=600)
    >>> 500 < len(train) < 1100, 300 < held_out.n_validation_encounters < 900
    (True, True)
    >>> set(train["patient_id"]) & set(held_out.encounters["patient_id"])
    set()
    >>> sample_for_training(table)[1] is None  # a small table is trained on whole
    True
    >>> sample_for_training(table, sample_rows=0)
    Traceback (most recent call last):
    ...
    engagekit.errors.ArgumentError: sample_rows must be a whole number above 0; found 0
    """
    _check_size("sample_above", sample_above, minimum=0)
    _check_size("sample_rows", sample_rows, minimum=1)
    _check_size("validation_rows", validation_rows, minimum=1)
    n_rows = len(encounters)
    if sample_above == 0 or n_rows <= sample_above or sample_rows >= n_rows:
        return encounters, None
    patients = encounters["patient_id"].to_numpy()
    in_sample = patient_sample_mask(patients, sample_rows / n_rows, seed, salt="sample")
    n_outside = int((~in_sample).sum())
    share = min(1.0, validation_rows / max(1, n_outside))
    validating = ~in_sample & patient_sample_mask(patients, share, seed, salt="validation")
    held_out = HeldOutSample(
        encounters=encounters[validating].reset_index(drop=True),
        n_encounters=n_rows,
        n_patients=int(pd.unique(patients).size),
        seed=seed,
        sample_above=sample_above,
    )
    return encounters[in_sample].reset_index(drop=True), held_out


def _check_size(name: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        above = "0 or above" if minimum == 0 else f"above {minimum - 1}"
        raise ArgumentError(f"{name} must be a whole number {above}; found {value!r}")
