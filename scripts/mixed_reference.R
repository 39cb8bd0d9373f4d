# lme4 references for the trajectory models' fixed-effect errors (run once; commit the output).
#
#   Rscript scripts/mixed_reference.R      (from the project root; lme4 from Debian's r-cran-lme4)
#
# Reads tests/data/inference/{btheb.csv,trajectory.csv} (written by
# scripts/inference_reference_data.py) and writes
#   r_lmer.csv        model, term, estimate, se (sqrt(diag(vcov())): (X'V^-1X)^-1 at the ML fit)
#   r_lmer_vc.csv     model, component, variance (R's ML variance parameters, so a test can
#                     evaluate our formula at exactly R's estimates)
# Every model is fitted by maximum likelihood (REML = FALSE), as pipeline.models.trajectories.
suppressPackageStartupMessages(library(lme4))
ctrl <- lmerControl(optimizer = "bobyqa", optCtrl = list(maxfun = 1e5),
                    check.conv.grad = .makeCC("warning", tol = 1e-6))

source("scripts/reference_data.R")

fits <- list(
  btheb = lmer(bdi ~ bdi_pre + time + treatment + drug + length + (1 | subject),
               data = btheb, REML = FALSE, control = ctrl),
  client = lmer(score ~ weeks + alliance_score_within + alliance_score_between +
                  (weeks | episode), data = traj, REML = FALSE, control = ctrl),
  therapist = lmer(score ~ weeks + alliance_score_within + alliance_score_between +
                     (1 | cluster) + (1 | episode) + (0 + weeks | episode),
                   data = traj, REML = FALSE, control = ctrl)
)

fixed <- do.call(rbind, lapply(names(fits), function(m) {
  f <- fits[[m]]
  data.frame(model = m, term = names(fixef(f)), estimate = unname(fixef(f)),
             se = unname(sqrt(diag(as.matrix(vcov(f))))))
}))
vc <- do.call(rbind, lapply(names(fits), function(m) {
  d <- as.data.frame(VarCorr(fits[[m]]))
  comp <- ifelse(is.na(d$var1), d$grp,
                 ifelse(is.na(d$var2), paste(d$grp, d$var1, sep = ":"),
                        paste(d$grp, d$var1, d$var2, sep = ":")))
  data.frame(model = m, component = comp, variance = d$vcov)
}))
write.csv(fixed, file.path(dir, "r_lmer.csv"), row.names = FALSE)
write.csv(vc, file.path(dir, "r_lmer_vc.csv"), row.names = FALSE)
writeLines(capture.output(sessionInfo()), file.path(dir, "r_lmer_session.txt"))
print(fixed, digits = 10); print(vc, digits = 10)
