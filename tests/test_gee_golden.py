"""Golden GEE tests against the published R ``gee`` output of Everitt & Hothorn.

The four GEE fits of the chapter "Analysing Longitudinal Data II" of *A Handbook of
Statistical Analyses Using R* (R packages HSAUR / HSAUR2): the respiratory trial
(binomial, logit link, scale fixed at 1) and Beat the Blues (gaussian), each with an
independence and an exchangeable working correlation. The data sets are rebuilt from the
raw published tables exactly as the book's R code builds them, fitted through ``_fit``
and compared, term by term by name, with the printed estimates, naive and robust
standard errors (``tests/data/gee_golden.json``; sources in ``tests/data/README.md``).
"""

from __future__ import annotations

import functools
import json
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf

from engagekit.heterogeneity._gee import fit_gee

DATA = Path(__file__).parent / "data"
GOLDEN = json.loads((DATA / "gee_golden.json").read_text(encoding="utf-8"))

# R's coefficient names (HSAUR, and HSAUR2 where it renamed treatment -> trt and
# sex -> gender) -> the statsmodels (patsy) names of the same columns of the design.
R_TO_STATSMODELS = {
    "(Intercept)": "Intercept",
    # respiratory
    "centre2": "centre[T.2]",
    "treatmenttreatment": "treatment[T.treatment]",
    "trttrt": "treatment[T.treatment]",
    "sexmale": "sex[T.male]",
    "gendermale": "sex[T.male]",
    "baselinegood": "baseline[T.good]",
    "age": "age",
    # BtheB
    "bdi.pre": "bdi_pre",
    "treatmentBtheB": "treatment[T.BtheB]",
    "trtBtheB": "treatment[T.BtheB]",
    "length>6m": "length[T.>6m]",
    "drugYes": "drug[T.Yes]",
}

# The R factors' level order (HSAUR's man/respiratory.Rd and man/BtheB.Rd); R's treatment
# contrasts take the first level as reference. Not alphabetical: status/baseline is
# poor < good and BtheB's treatment is TAU < BtheB.
RESPIRATORY_LEVELS = {
    "centre": ["1", "2"],
    "treatment": ["placebo", "treatment"],
    "sex": ["female", "male"],
    "baseline": ["poor", "good"],
}
BTHEB_LEVELS = {
    "drug": ["No", "Yes"],
    "length": ["<6m", ">6m"],
    "treatment": ["TAU", "BtheB"],
}

FORMULAS = {
    # R: nstat ~ centre + treatment + sex + baseline + age
    "respiratory": "nstat ~ centre + treatment + sex + baseline + age",
    # R: bdi ~ bdi.pre + treatment + length + drug ('bdi.pre' is not a patsy name)
    "BtheB": "bdi ~ bdi_pre + treatment + length + drug",
}


def _fit(
    formula: str, data: pd.DataFrame, family: str, cov_struct: str
) -> tuple[pd.Series, pd.Series, pd.Series]:
    """Fit a GEE with clusters ``data["subject"]``; the one place a model is fitted.

    ``family`` is ``"binomial"`` (logit link, scale 1, as R's ``scale.fix = TRUE,
    scale.value = 1``) or ``"gaussian"`` (scale estimated by the Pearson chi-square over
    N - p, as R's gee); ``cov_struct`` is ``"independence"`` or ``"exchangeable"``.
    Returns (estimates, robust (sandwich) SEs, naive (model-based) SEs), each indexed by
    the statsmodels term name.
    """
    # only the design matrix comes from the formula; the fit is engagekit's own wrapper
    design = smf.gee(formula, groups="subject", data=data)
    exog = pd.DataFrame(design.exog, columns=design.exog_names)
    fit = fit_gee(
        design.endog,
        exog,
        data["subject"].to_numpy(),
        family=family,
        working_correlation=cov_struct,
        cov_type="robust",
    )
    # None of these fits warns with statsmodels 0.15; a harmless warning would be in
    # fit.notes, and a convergence problem would have raised.
    assert not fit.notes, fit.notes
    return fit.params, fit.bse_robust, fit.bse_naive


def _categorical(frame: pd.DataFrame, levels: dict[str, list[str]]) -> pd.DataFrame:
    for column, categories in levels.items():
        values = pd.Categorical(frame[column], categories=categories)
        assert not pd.isna(values).any(), f"{column}: a value outside {categories}"
        frame[column] = values
    return frame


def _respiratory() -> pd.DataFrame:
    """``resp`` of the book's chunk 'ALDII-respiratory-data' (HSAUR)."""
    respiratory = pd.read_csv(
        DATA / "respiratory.csv",
        index_col=0,
        dtype={"centre": str, "month": str, "subject": str},
    )
    assert respiratory.shape == (555, 7)
    # resp <- subset(respiratory, month > "0")
    resp = respiratory[respiratory["month"] > "0"].copy()
    # resp$baseline <- rep(subset(respiratory, month == "0")$status, rep(4, 111))
    month0 = respiratory[respiratory["month"] == "0"]
    resp["baseline"] = np.repeat(month0["status"].to_numpy(), 4)
    # rep() relies on the rows being grouped by subject, 4 follow-up months each
    assert (resp["subject"].to_numpy() == np.repeat(month0["subject"].to_numpy(), 4)).all()
    # resp$nstat <- as.numeric(resp$status == "good")
    resp["nstat"] = (resp["status"] == "good").astype(float)
    assert len(resp) == 444 and resp["subject"].nunique() == 111
    return _categorical(resp, RESPIRATORY_LEVELS)


def _btheb_long() -> pd.DataFrame:
    """``BtheB_long`` of the book's chunks 'ALDII-BtheB-data' and '-geefit-indep' (HSAUR)."""
    btheb = pd.read_csv(DATA / "BtheB.csv", index_col="rownames")
    assert btheb.shape == (100, 8)
    # BtheB$subject <- factor(rownames(BtheB))
    btheb["subject"] = btheb.index.astype(str)
    # reshape(BtheB, idvar = "subject", varying = c("bdi.2m", "bdi.4m", "bdi.6m",
    # "bdi.8m"), direction = "long"): one block of all subjects per time point;
    # BtheB_long$time <- rep(c(2, 4, 6, 8), rep(nobs, 4))
    varying = ["bdi.2m", "bdi.4m", "bdi.6m", "bdi.8m"]
    fixed = btheb.drop(columns=varying)
    long = pd.concat(
        [fixed.assign(time=t, bdi=btheb[v]) for t, v in zip([2, 4, 6, 8], varying, strict=True)],
        ignore_index=True,
    )
    # osub <- order(as.integer(BtheB_long$subject)); BtheB_long <- BtheB_long[osub, ]
    # (factor codes: subject labels in string order "1", "10", "100", "11", ...; stable)
    long = long.sort_values("subject", kind="stable")
    # gee()'s default na.action, na.omit, drops the rows of the model frame with a missing
    # value: here the visits whose bdi is missing (the covariates are complete)
    long = long.dropna(subset=["bdi", "bdi.pre", "treatment", "length", "drug"])
    long = long.rename(columns={"bdi.pre": "bdi_pre"})
    # 3 of the 100 patients (91, 97, 100) have no follow-up bdi at all
    assert len(long) == 280 and long["subject"].nunique() == 97
    return _categorical(long, BTHEB_LEVELS)


BUILDERS = {"respiratory.csv": ("respiratory", _respiratory), "BtheB.csv": ("BtheB", _btheb_long)}


@functools.cache
def _fitted(model: str) -> dict[str, pd.Series]:
    spec = GOLDEN["models"][model]
    dataset, build = BUILDERS[spec["data"]]
    params, robust, naive = _fit(FORMULAS[dataset], build(), spec["family"], spec["corstr"])
    return {"estimate": params, "robust_se": robust, "naive_se": naive}


def _half_unit(printed: str) -> float:
    """Half a unit in the last printed decimal: the rounding of the printed value."""
    exponent = Decimal(printed).as_tuple().exponent
    assert isinstance(exponent, int)
    return 0.5 * 10.0**exponent


@pytest.mark.parametrize("quantity", ["estimate", "robust_se", "naive_se"])
@pytest.mark.parametrize("source", ["primary", "cross_check"])
@pytest.mark.parametrize("model", sorted(GOLDEN["models"]))
def test_gee_matches_published_r_output(model, source, quantity):
    published = GOLDEN["models"][model][source]
    got = _fitted(model)[quantity]
    names = [R_TO_STATSMODELS[term] for term in published["terms"]]
    assert sorted(names) == sorted(got.index), (names, list(got.index))
    mismatches = []
    for term, name, printed in zip(published["terms"], names, published[quantity], strict=True):
        tolerance = 0.0005 + _half_unit(printed)
        if not abs(got[name] - float(printed)) <= tolerance:
            mismatches.append((term, name, printed, float(got[name]), tolerance))
    assert not mismatches, mismatches


def test_respiratory_exchangeable_estimates_equal_the_independence_ones():
    """All covariates are constant within a patient and every patient has 4 visits, so
    the exchangeable fit equals the independence fit (as R printed), naive SEs apart."""
    independence = _fitted("respiratory_independence")
    exchangeable = _fitted("respiratory_exchangeable")
    for quantity in ("estimate", "robust_se"):
        pd.testing.assert_series_equal(
            independence[quantity], exchangeable[quantity], rtol=1e-6, atol=1e-8
        )
    assert (exchangeable["naive_se"] > independence["naive_se"]).all()
