# lme4 references for the exact two-level mixed model (pipeline/models/lmm.py), run once;
# commit the output.
#
#   Rscript scripts/lmm_reference.R      (from the project root; lme4 from Debian's r-cran-lme4)
#
# Reads tests/data/inference/{btheb.csv,trajectory.csv} and writes r_lmm.csv: per model and
# method (ML, REML), every fixed effect (estimate, se = sqrt(diag(vcov()))), every variance
# parameter (VarCorr, residual included), theta and the log-likelihood, to full precision.
# The optimiser runs to a far tighter tolerance than lme4's default (bobyqa, rhoend 1e-12),
# so the reference is the optimum itself and a comparison to 1e-6 tests the fit, not where
# two optimisers happened to stop.
suppressPackageStartupMessages(library(lme4))
ctrl <- lmerControl(optimizer = "bobyqa", optCtrl = list(maxfun = 1e6, rhoend = 1e-12),
                    check.conv.grad = .makeCC("warning", tol = 1e-6))

source("scripts/reference_data.R")

models <- list(
  btheb = list(bdi ~ bdi_pre + time + treatment + drug + length + (1 | subject), btheb),
  btheb_slope = list(bdi ~ bdi_pre + time + treatment + drug + length + (time | subject),
                     btheb),
  client = list(score ~ weeks + alliance_score_within + alliance_score_between +
                  (weeks | episode), traj)
)

rows <- list()
for (m in names(models)) {
  for (reml in c(FALSE, TRUE)) {
    f <- lmer(models[[m]][[1]], data = models[[m]][[2]], REML = reml, control = ctrl)
    method <- if (reml) "REML" else "ML"
    vc <- as.data.frame(VarCorr(f))
    comp <- ifelse(is.na(vc$var1), vc$grp,
                   ifelse(is.na(vc$var2), paste(vc$grp, vc$var1, sep = ":"),
                          paste(vc$grp, vc$var1, vc$var2, sep = ":")))
    th <- getME(f, "theta")
    rows[[length(rows) + 1]] <- rbind(
      data.frame(model = m, method = method, kind = "estimate", name = names(fixef(f)),
                 value = unname(fixef(f))),
      data.frame(model = m, method = method, kind = "se", name = names(fixef(f)),
                 value = unname(sqrt(diag(as.matrix(vcov(f)))))),
      data.frame(model = m, method = method, kind = "variance", name = comp, value = vc$vcov),
      data.frame(model = m, method = method, kind = "theta", name = names(th),
                 value = unname(th)),
      data.frame(model = m, method = method, kind = "loglik", name = "logLik",
                 value = as.numeric(logLik(f)))
    )
  }
}
out <- do.call(rbind, rows)
write.csv(out, file.path(dir, "r_lmm.csv"), row.names = FALSE)
options(digits = 15)
print(out)
