"""Kendall's tau-b, shared by the bench scripts that rank sources
(transferability.sh, text_score.sh, domain_shift.sh)."""
import math


def tau_b(x, y):
    """Kendall's tau-b of two equally long sequences: (concordant - discordant)
    / sqrt((n0 - ties in x) (n0 - ties in y)), n0 = n (n - 1) / 2; nan when
    either is constant."""
    n = len(x)
    nc = nd = tx = ty = 0
    for i in range(n):
        for j in range(i + 1, n):
            dx = (x[i] > x[j]) - (x[i] < x[j])
            dy = (y[i] > y[j]) - (y[i] < y[j])
            tx += dx == 0
            ty += dy == 0
            if dx and dy:
                nc += dx == dy
                nd += dx != dy
    n0 = n * (n - 1) / 2
    den = math.sqrt((n0 - tx) * (n0 - ty))
    return (nc - nd) / den if den > 0 else float("nan")
