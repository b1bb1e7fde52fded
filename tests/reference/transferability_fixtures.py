"""Numpy reference for graft's transferability scores, and the fixtures the C++
tests compare against (tolerance 1e-6).

Every score is computed in float64 from the float32 values that are stored in
the fixture file (inputs are generated in float64, rounded to float32, then
read back as float64), so a C++ port that reads the float32 tensors and
converts them to double reproduces the same numbers.

Scores (each a plain function below, the docstring is the specification):
  logme(features, labels)         You et al. 2021, thuml/LogME's LogME.fit
  h_score(features, labels)       Bao et al. 2019
  leep(source_probs, labels)      Nguyen et al. 2020, thuml/LogME's LEEP.py
  nce(source_labels, labels)      Tran et al. 2019, thuml/LogME's NCE.py
  linear_cka(X, Y)                Kornblith et al. 2019
  mmd_rbf(X, Y, sigma)            squared MMD, biased V-statistic
  median_sigma(X, Y)              the bandwidth heuristic used with mmd_rbf

Writes, under OUT_DIR/transferability/:
  cases.safetensors   (written by st.py)
    tall.features      F32 [300, 16]
    tall.labels        I64 [300]       in 0..4
    tall.source_probs  F32 [300, 8]    softmax rows (sum to 1 up to float32)
    tall.source_labels I64 [300]       argmax of tall.source_probs (as stored)
    wide.features      F32 [40, 64]
    wide.labels        I64 [40]        in 0..3, every class present
    wide.source_probs  F32 [40, 8]
    wide.source_labels I64 [40]
    pair.X             F32 [200, 32]   MMD first sample, CKA first view
    pair.Y             F32 [150, 32]   MMD second sample
    pair.X2            F32 [200, 24]   CKA second view (rows paired with pair.X)
  expected.json
    {"tall": {"logme", "h_score", "leep", "nce"},
     "wide": {"logme", "h_score", "leep", "nce"},
     "cka": linear_cka(pair.X, pair.X2),
     "mmd": mmd_rbf(pair.X, pair.Y, mmd_sigma),
     "mmd_sigma": median_sigma(pair.X, pair.Y),
     "pad", "pad_error": proxy_a_distance(pair.X, pair.Y) (5 folds, l2 1),
     "pad_self", "pad_error_self": the same for pair.X[:100] and pair.X[100:],
     "mmd_p": mmd_permutation_p(pair.X, pair.Y, mmd_sigma, 200, seed 7),
     "mmd_sigma_self", "mmd_p_self": the same for the two halves of pair.X}
    floats written with repr (full double precision).

Usage: /usr/bin/python3 transferability_fixtures.py OUT_DIR
(or through make_fixtures.py, which calls make(out_dir)).
"""
import os
import sys

import numpy as np

# --------------------------------------------------------------------------
# LogME
# --------------------------------------------------------------------------

LOGME_MAX_ITERS = 11      # iterations of the fixed point, at most
LOGME_TOL = 1e-3          # stop when |t_new - t| / t <= LOGME_TOL, t = alpha/beta
LOGME_EPS = 1e-5          # added to the denominators of the alpha/beta updates
LOGME_RANK_TOL = 1e-10    # N > D branch: keep singular values s_j > 1e-10


def _logme_spectrum(f):
    """(sigma [k], proj [k, N]) with sigma_j = s_j^2 the squared singular
    values of f and proj the rows u_j^T of the matching left singular vectors,
    exactly as thuml/LogME's _fit_fixed_point obtains them."""
    n, d = f.shape
    if n > d:
        # truncated_svd(): SVD of the D x D Gram matrix (symmetric PSD, so this
        # is its eigen-decomposition), s = sqrt(eigenvalue), rank cut s > 1e-10,
        # u_j = f v_j / s_j.
        _, ev, vh = np.linalg.svd(f.T @ f)
        s = np.sqrt(ev)
        k = int(np.sum(s > LOGME_RANK_TOL))
        s, vh = s[:k], vh[:k]
        u = (f @ vh.T) / s.reshape(1, -1)
    else:
        # Thin SVD of f itself: k = N values, no rank cut.
        u, s, _ = np.linalg.svd(f, full_matrices=False)
    return s ** 2, u.T


def _logme_class(sigma, proj, y, n, d, trace=None):
    """Evidence / N for one target column y (float64 [N]); see logme()."""
    x2 = (proj @ y) ** 2
    res_x2 = float(y @ y) - float(x2.sum())
    alpha, beta = 1.0, 1.0
    for it in range(LOGME_MAX_ITERS):
        t = alpha / beta
        gamma = float((sigma / (sigma + t)).sum())
        m2 = float((sigma * x2 / ((t + sigma) ** 2)).sum())
        res2 = float((x2 / ((1.0 + sigma / t) ** 2)).sum()) + res_x2
        alpha = gamma / (m2 + LOGME_EPS)
        beta = (n - gamma) / (res2 + LOGME_EPS)
        t_new = alpha / beta
        rel = abs(t_new - t) / t
        if trace is not None:
            trace.append((it + 1, rel))
        if rel <= LOGME_TOL:
            break
    evidence = (d / 2.0 * np.log(alpha)
                + n / 2.0 * np.log(beta)
                - 0.5 * float(np.sum(np.log(alpha + beta * sigma)))
                - beta / 2.0 * res2
                - alpha / 2.0 * m2
                - n / 2.0 * np.log(2.0 * np.pi))
    return evidence / n, alpha, beta


def logme(features, labels, details=False):
    """LogME (You et al., ICML 2021), exactly thuml/LogME's LogME.fit for
    classification (its default `_fit = _fit_fixed_point`).

    features: [N, D] (converted to float64, NOT centred); labels: [N] ints in
    0..C-1 with C = max(labels) + 1 (every class index up to the max counts,
    even one without samples: its y is all zeros).

    1. Spectrum of F = features (float64):
       N > D:  eigen-decomposition of G = F^T F (D x D; the reference calls
               svd(G), same thing for a PSD matrix): eigenvalues e_j, unit
               eigenvectors v_j; s_j = sqrt(e_j); keep only j with s_j > 1e-10
               (k of them); u_j = F v_j / s_j.
       N <= D: thin SVD F = U diag(s) V^T, k = N, no cut (zero singular values
               are kept; with torch use svd, or eigh of F F^T clamped at 0).
       sigma_j = s_j^2 (j = 1..k).  Only sigma and the squared projections
       below are used, so signs/rotations of singular vectors do not matter.
    2. For each class c = 0..C-1: y = 1[labels == c] (float64, [N]);
       x2_j = (u_j^T y)^2  (N > D: = (v_j^T F^T y)^2 / sigma_j);
       res_x2 = ||y||^2 - sum_j x2_j  (= count of class c minus sum x2).
       alpha = 1, beta = 1; repeat at most 11 times:
           t      = alpha / beta
           gamma  = sum_j sigma_j / (sigma_j + t)
           m2     = sum_j sigma_j x2_j / (t + sigma_j)^2
           res2   = sum_j x2_j / (1 + sigma_j / t)^2 + res_x2
           alpha  = gamma / (m2 + 1e-5)
           beta   = (N - gamma) / (res2 + 1e-5)
           t_new  = alpha / beta
           if |t_new - t| / t <= 1e-3: stop       (the test is "<=")
       After the loop (whether it stopped or ran all 11 times), with the LAST
       alpha, beta and the m2, res2 of the LAST iteration (i.e. computed with
       the t from before the last update, and WITHOUT the 1e-5):
           ev_c = [ D/2 log alpha + N/2 log beta
                    - 1/2 sum_{j<=k} log(alpha + beta sigma_j)
                    - beta/2 res2 - alpha/2 m2 - N/2 log(2 pi) ] / N
       D is the full feature dimension, not k. (So for N <= D this is the
       reference's formula, which exceeds the exact log evidence by
       (D - k)/2 log alpha: the D - k zero eigenvalues of F^T F are left out
       of the log-determinant. Kept on purpose, to match the reference.)
    3. LogME = mean over c of ev_c.

    details=True also returns, per class, (alpha, beta, trace) with trace the
    list of (iteration, |t_new - t| / t).
    """
    f = np.asarray(features, dtype=np.float64)
    lab = np.asarray(labels).astype(np.int64).reshape(-1)
    n, d = f.shape
    sigma, proj = _logme_spectrum(f)
    num_classes = int(lab.max()) + 1
    evs, info = [], []
    for c in range(num_classes):
        y = (lab == c).astype(np.float64)
        trace = []
        ev, alpha, beta = _logme_class(sigma, proj, y, n, d, trace)
        evs.append(ev)
        info.append((alpha, beta, trace))
    score = float(np.mean(evs))
    return (score, info) if details else score


# --------------------------------------------------------------------------
# H-score
# --------------------------------------------------------------------------

H_SCORE_RCOND = 1e-10   # pinv cut: singular values <= 1e-10 * max are dropped


def _population_cov(a):
    a = a - a.mean(axis=0, keepdims=True)
    return (a.T @ a) / a.shape[0]


def h_score(features, labels):
    """H-score (Bao et al., ICIP 2019): tr( pinv(cov(f)) cov(g) ).

    f = features as float64 [N, D]; g [N, D] has row i = mean of f over the
    samples with the same label as sample i (class means, classes as they
    occur in labels). cov(a) = (a - colmean(a))^T (a - colmean(a)) / N
    (population normalisation; the score is the same for any common factor,
    e.g. the 1/(N-1) of the original code).

    pinv: Moore-Penrose pseudo-inverse of the symmetric PSD cov(f) by SVD
    (numpy.linalg.pinv(cov_f, rcond=1e-10, hermitian=True): singular values =
    |eigenvalues|, those s <= 1e-10 * max(s) are set to zero, the others
    inverted; torch.linalg.pinv(cov_f, rtol=1e-10, hermitian=True) is the same
    rule). The cut only matters for rank-deficient cov(f), e.g. N <= D, where
    the score equals (number of classes - 1) exactly.
    """
    f = np.asarray(features, dtype=np.float64)
    lab = np.asarray(labels).astype(np.int64).reshape(-1)
    g = np.zeros_like(f)
    for c in np.unique(lab):
        m = lab == c
        g[m] = f[m].mean(axis=0)
    cov_f = _population_cov(f)
    cov_g = _population_cov(g)
    return float(np.trace(np.linalg.pinv(cov_f, rcond=H_SCORE_RCOND, hermitian=True) @ cov_g))


# --------------------------------------------------------------------------
# LEEP and NCE
# --------------------------------------------------------------------------

def leep(source_probs, labels):
    """LEEP (Nguyen et al., ICML 2020), as thuml/LogME's LEEP.py.

    theta = source_probs as float64 [N, Cs], used as stored (rows are NOT
    renormalised); labels [N] in 0..Ct-1, Ct = max(labels) + 1.
      joint[y, z] = (1/N) sum_{i: labels_i = y} theta[i, z]        [Ct, Cs]
      P(z)        = sum_y joint[y, z]          (column sums of joint)
      P(y | z)    = joint[y, z] / P(z)
      LEEP        = (1/N) sum_i log( sum_z theta[i, z] P(labels_i | z) )
    (Requires every P(z) > 0, true for softmax outputs.)
    """
    theta = np.asarray(source_probs, dtype=np.float64)
    lab = np.asarray(labels).astype(np.int64).reshape(-1)
    n, cs = theta.shape
    ct = int(lab.max()) + 1
    joint = np.zeros((ct, cs))
    for y in range(ct):
        joint[y] = (theta[lab == y] / float(n)).sum(axis=0)
    p_y_given_z = joint / joint.sum(axis=0, keepdims=True)   # [Ct, Cs]
    pred = theta @ p_y_given_z.T                              # [N, Ct]
    return float(np.mean(np.log(pred[np.arange(n), lab])))


def nce(source_labels, labels):
    """NCE (Tran et al., ICCV 2019): -H(Y | Z), natural log.

    z = source_labels [N] (hard source labels, e.g. argmax of source_probs),
    y = labels [N].  joint[y, z] = count(y_i = y and z_i = z) / N,
    P(z) = sum_y joint[y, z],
      NCE = sum_{(y, z): joint[y, z] > 0} joint[y, z] log( joint[y, z] / P(z) )
    i.e. 0 log 0 = 0 and source classes never predicted contribute nothing
    (thuml/LogME's NCE.py would give NaN there). Always <= 0.
    """
    z = np.asarray(source_labels).astype(np.int64).reshape(-1)
    y = np.asarray(labels).astype(np.int64).reshape(-1)
    n = len(z)
    joint = np.zeros((int(y.max()) + 1, int(z.max()) + 1))
    np.add.at(joint, (y, z), 1.0)
    joint /= n
    p_z = joint.sum(axis=0, keepdims=True)
    nz = joint > 0
    pz = np.broadcast_to(p_z, joint.shape)
    return float(np.sum(joint[nz] * np.log(joint[nz] / pz[nz])))


# --------------------------------------------------------------------------
# CKA and MMD
# --------------------------------------------------------------------------

def linear_cka(X, Y):
    """Linear CKA (Kornblith et al., ICML 2019).

    X [N, D1], Y [N, D2] (rows paired), float64, each column-centred
    (subtract the column mean over the N rows). Then
      CKA = ||Y^T X||_F^2 / ( ||X^T X||_F * ||Y^T Y||_F )
    (Frobenius norms). In [0, 1]; invariant to orthogonal maps and scaling.
    """
    x = np.asarray(X, dtype=np.float64)
    y = np.asarray(Y, dtype=np.float64)
    x = x - x.mean(axis=0, keepdims=True)
    y = y - y.mean(axis=0, keepdims=True)
    num = np.linalg.norm(y.T @ x, "fro") ** 2
    return float(num / (np.linalg.norm(x.T @ x, "fro") * np.linalg.norm(y.T @ y, "fro")))


def domain_cka(X, Y):
    """Domain similarity of two unpaired feature sets through one backbone.

    X [N, D], Y [M, D] (the columns are the same features). The covariances
    Cx = Xc^T Xc / N and Cy = Yc^T Yc / M of the column-centred sets, then
      domain_cka = <Cx, Cy>_F / ( ||Cx||_F * ||Cy||_F ),
    i.e. linear CKA with the D features as the paired axis. In [0, 1].
    """
    x = np.asarray(X, dtype=np.float64)
    y = np.asarray(Y, dtype=np.float64)
    x = x - x.mean(axis=0, keepdims=True)
    y = y - y.mean(axis=0, keepdims=True)
    cx = x.T @ x / len(x)
    cy = y.T @ y / len(y)
    return float((cx * cy).sum() / (np.linalg.norm(cx, "fro") * np.linalg.norm(cy, "fro")))


def _sq_dists(a, b):
    """||a_i - b_j||^2 as [len(a), len(b)], by explicit differences."""
    diff = a[:, None, :] - b[None, :, :]
    return np.einsum("ijk,ijk->ij", diff, diff)


def mmd_rbf(X, Y, sigma):
    """Squared MMD with a Gaussian kernel, biased (V-statistic) estimate.

    k(a, b) = exp( -||a - b||^2 / (2 sigma^2) ),  X [N, D], Y [M, D] float64:
      MMD^2 = (1/N^2) sum_{i,j} k(x_i, x_j) + (1/M^2) sum_{i,j} k(y_i, y_j)
              - 2/(N M) sum_{i,j} k(x_i, y_j)
    (diagonal terms k = 1 included). >= 0 up to rounding.
    """
    x = np.asarray(X, dtype=np.float64)
    y = np.asarray(Y, dtype=np.float64)
    s2 = 2.0 * float(sigma) ** 2
    kxx = np.exp(-_sq_dists(x, x) / s2).mean()
    kyy = np.exp(-_sq_dists(y, y) / s2).mean()
    kxy = np.exp(-_sq_dists(x, y) / s2).mean()
    return float(kxx + kyy - 2.0 * kxy)


def median_sigma(X, Y):
    """Median-heuristic bandwidth for mmd_rbf.

    Z = rows of X followed by rows of Y (pooled, L = N + M rows, float64).
    d2 = the squared Euclidean distances ||z_i - z_j||^2 over all unordered
    pairs i < j (each pair once, diagonal excluded): L(L-1)/2 values.
    med = their median (numpy.median: the middle value after sorting, or the
    mean of the two middle values when the count is even).
    sigma = sqrt(med / 2), so that 2 sigma^2 = med and k(a, b) =
    exp(-||a - b||^2 / med).
    """
    z = np.concatenate([np.asarray(X, dtype=np.float64), np.asarray(Y, dtype=np.float64)])
    d2 = _sq_dists(z, z)
    iu = np.triu_indices(len(z), k=1)
    return float(np.sqrt(np.median(d2[iu]) / 2.0))


def mmd_permutation_p(X, Y, sigma, permutations, seed):
    """p-value of the permutation test of mmd_rbf(X, Y, sigma).

    One torch CPU generator, torch.Generator().manual_seed(seed); for each of
    the `permutations` draws perm = torch.randperm(N + M, generator=gen) (one
    after another from that generator) the pooled rows Z = [X; Y] are split
    into Z[perm[:N]] (playing X) and Z[perm[N:]] (playing Y), and their
    mmd_rbf is recomputed from the features (brute force). Then
      p = (1 + #{draws with MMD >= the observed mmd_rbf(X, Y)}) / (1 + permutations).
    """
    import torch
    x = np.asarray(X, dtype=np.float64)
    y = np.asarray(Y, dtype=np.float64)
    z = np.concatenate([x, y])
    observed = mmd_rbf(x, y, sigma)
    gen = torch.Generator().manual_seed(int(seed))
    count = 0
    for _ in range(permutations):
        perm = torch.randperm(len(z), generator=gen).numpy()
        if mmd_rbf(z[perm[:len(x)]], z[perm[len(x):]], sigma) >= observed:
            count += 1
    return (1 + count) / (1 + permutations)


def _logistic_fit(a, t, l2):
    """argmin_w sum_i log(1 + exp(-(2 t_i - 1) a_i.w)) + l2/2 |w[:-1]|^2 (the
    last column of `a` is the bias, not penalised), by Newton's method from 0
    until the largest step is below 1e-9 (at most 50 steps)."""
    d = a.shape[1]
    reg = np.full(d, float(l2))
    reg[-1] = 0.0
    w = np.zeros(d)
    for _ in range(50):
        p = 1.0 / (1.0 + np.exp(-(a @ w)))
        grad = a.T @ (p - t) + reg * w
        hess = (a * (p * (1 - p))[:, None]).T @ a + np.diag(reg + 1e-10)
        step = np.linalg.solve(hess, grad)
        w = w - step
        if np.abs(step).max() < 1e-9:
            break
    return w


def proxy_a_distance(X, Y, folds=5, l2=1.0):
    """Proxy A-distance from a cross-validated linear domain classifier.

    Domain 0 = the rows of X [N, D], domain 1 = the rows of Y [M, D]. Row i of
    X is in fold i % folds, row j of Y in fold j % folds. For each fold: the
    other folds' rows are standardised by their own column mean and (population)
    standard deviation (a zero deviation counts as 1), a bias column of ones is
    appended, the L2-regularised logistic regression of _logistic_fit is fitted,
    and the fold's rows (standardised the same way) are classified as domain 1
    when their logit is > 0. eps = (X rows called 1) / N / 2 + (Y rows called 0)
    / M / 2 over all folds (the balanced error), PAD = 2 (1 - 2 eps).
    Returns (pad, eps).
    """
    x = np.asarray(X, dtype=np.float64)
    y = np.asarray(Y, dtype=np.float64)
    z = np.concatenate([x, y])
    t = np.concatenate([np.zeros(len(x)), np.ones(len(y))])
    fold = np.concatenate([np.arange(len(x)) % folds, np.arange(len(y)) % folds])
    wrong_x = wrong_y = 0
    for f in range(folds):
        tr, te = fold != f, fold == f
        mean = z[tr].mean(axis=0)
        sd = z[tr].std(axis=0)
        sd[sd == 0] = 1.0
        design = lambda rows: np.concatenate([(rows - mean) / sd, np.ones((len(rows), 1))], axis=1)
        w = _logistic_fit(design(z[tr]), t[tr], l2)
        called_y = design(z[te]) @ w > 0
        wrong_x += int(np.sum(called_y & (t[te] == 0)))
        wrong_y += int(np.sum(~called_y & (t[te] == 1)))
    eps = 0.5 * (wrong_x / len(x) + wrong_y / len(y))
    return 2.0 * (1.0 - 2.0 * eps), eps


# --------------------------------------------------------------------------
# Fixtures
# --------------------------------------------------------------------------

def _f32(a):
    """Rounds to float32 (what is stored) and returns float64 copies of it."""
    a32 = np.ascontiguousarray(np.asarray(a, dtype=np.float32))
    return a32, a32.astype(np.float64)


def _softmax(logits):
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _classification_case(seed, n, d, c, cs, mean_scale):
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(n) % c).astype(np.int64)  # every class present
    means = rng.normal(0.0, mean_scale, size=(c, d))
    feats32, feats = _f32(means[labels] + rng.normal(0.0, 1.0, size=(n, d)))
    # Source classifier: class y favours source class z_of[y] (two target classes
    # share one source class, so LEEP/NCE are informative but not perfect).
    z_of = rng.integers(0, cs, size=c)
    logits = rng.normal(0.0, 1.0, size=(n, cs))
    logits[np.arange(n), z_of[labels]] += 2.0
    probs32, probs = _f32(_softmax(logits))
    src32 = np.argmax(probs32, axis=1).astype(np.int64)
    return {"features": (feats32, feats), "labels": labels,
            "source_probs": (probs32, probs), "source_labels": src32}


def _scores(case):
    f = case["features"][1]
    y = case["labels"]
    return {"logme": logme(f, y), "h_score": h_score(f, y),
            "leep": leep(case["source_probs"][1], y),
            "nce": nce(case["source_labels"], y)}


def build():
    """Returns (tensors as numpy arrays by name, expected dict, cases)."""
    tall = _classification_case(seed=20240611, n=300, d=16, c=5, cs=8, mean_scale=1.0)
    wide = _classification_case(seed=20240612, n=40, d=64, c=4, cs=8, mean_scale=0.5)
    rng = np.random.default_rng(20240613)
    x32, x = _f32(rng.normal(0.0, 1.0, size=(200, 32)))
    y32, y = _f32(0.3 + 1.2 * rng.normal(0.0, 1.0, size=(150, 32)))
    w = rng.normal(0.0, 1.0, size=(32, 24)) / np.sqrt(32.0)
    x2_32, x2 = _f32(np.tanh(x @ w) + 0.5 * rng.normal(0.0, 1.0, size=(200, 24)))

    tensors = {}
    for name, case in (("tall", tall), ("wide", wide)):
        tensors[f"{name}.features"] = case["features"][0]
        tensors[f"{name}.labels"] = case["labels"]
        tensors[f"{name}.source_probs"] = case["source_probs"][0]
        tensors[f"{name}.source_labels"] = case["source_labels"]
    tensors["pair.X"] = x32
    tensors["pair.Y"] = y32
    tensors["pair.X2"] = x2_32

    sigma = median_sigma(x, y)
    expected = {"tall": _scores(tall), "wide": _scores(wide),
                "cka": linear_cka(x, x2), "mmd": mmd_rbf(x, y, sigma),
                "mmd_sigma": sigma, "domain_cka": domain_cka(x, y),
                "domain_cka_self": domain_cka(x[:100], x[100:])}
    # Domain shift (issue 19): PAD and the MMD permutation test on the shifted
    # pair and on two halves of one sample.
    sigma_self = median_sigma(x[:100], x[100:])
    pad, eps = proxy_a_distance(x, y)
    pad_self, eps_self = proxy_a_distance(x[:100], x[100:])
    expected.update({"pad": pad, "pad_error": eps, "pad_self": pad_self, "pad_error_self": eps_self,
                     "mmd_sigma_self": sigma_self,
                     "mmd_p": mmd_permutation_p(x, y, sigma, 200, 7),
                     "mmd_p_self": mmd_permutation_p(x[:100], x[100:], sigma_self, 200, 7)})
    return tensors, expected, {"tall": tall, "wide": wide, "pair": (x, y, x2)}


def _check_logme_stopping(f, y, min_margin=1e-3):
    """The stopping test must not be a near tie (else a port could stop one
    iteration earlier or later): every |t_new - t|/t must differ from the
    tolerance by a relative min_margin. Also the N > D rank cut must be clear."""
    _, info = logme(f, y, details=True)
    for alpha, beta, trace in info:
        for _, rel in trace:
            assert abs(rel - LOGME_TOL) > min_margin * LOGME_TOL, (rel, trace)
    n, d = f.shape
    if n > d:
        s = np.sqrt(np.linalg.eigvalsh(f.T @ f).clip(min=0))
        assert np.all(np.abs(s - LOGME_RANK_TOL) > 1e-3), s
    return info


def _check_h_score_cut(f):
    e = np.abs(np.linalg.eigvalsh(_population_cov(f)))
    r = e / e.max()
    kept, dropped = r[r > H_SCORE_RCOND], r[r <= H_SCORE_RCOND]
    assert kept.min() > 1e3 * H_SCORE_RCOND, kept.min()
    assert dropped.size == 0 or dropped.max() < 1e-3 * H_SCORE_RCOND, dropped.max()


def make(out_dir):
    import st

    tensors, expected, cases = build()
    for name in ("tall", "wide"):
        case = cases[name]
        _check_logme_stopping(case["features"][1], case["labels"])
        _check_h_score_cut(case["features"][1])
    st.save_case(out_dir, "transferability", tensors, expected, "tests/reference/transferability_fixtures.py")


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    make(sys.argv[1])
