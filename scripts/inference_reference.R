# Reference values for the pipeline's inference, computed once with R and committed as
# fixtures (tests never need R). Rows come from scripts/inference_reference_data.py.
#
#   Rscript scripts/inference_reference.R     (from the project root)
#
# Writes tests/data/inference/r_cox.csv (models uis, dropout and dropout_28_84, the last
# with delayed entry) (coefficient, model-based and cluster-robust SE of
# coxph(..., ties = "efron", cluster = ...)) and r_zph.csv (cox.zph: chi-square, df, p per
# term and global, transform "km" and "identity").
suppressPackageStartupMessages(library(survival))
dir <- "tests/data/inference"
uis <- read.csv(file.path(dir, "uis.csv"))
dropout <- read.csv(file.path(dir, "dropout.csv"))
xs <- grep("^x", names(dropout), value = TRUE)

# Period-specific model (pipeline.models.analysis.dropout_by_period): still at risk at day 28
# enter then, follow-up censored at day 84.
late <- dropout[dropout$time > 28, ]
late$entry <- 28
late$stop <- pmin(late$time, 84)
late$status <- late$event * (late$time <= 84)

fits <- list(
  uis = coxph(Surv(TIME, CENSOR) ~ FRAC + TREAT + SITE + AGE + BECK + NDT + IV3 + RACE,
              data = uis, ties = "efron", cluster = ID),
  dropout = coxph(as.formula(paste("Surv(time, event) ~", paste(xs, collapse = " + "))),
                  data = dropout, ties = "efron", cluster = cluster),
  dropout_28_84 = coxph(as.formula(paste("Surv(entry, stop, status) ~",
                                         paste(xs, collapse = " + "))),
                        data = late, ties = "efron", cluster = cluster)
)

cox <- do.call(rbind, lapply(names(fits), function(name) {
  f <- fits[[name]]
  data.frame(model = name, term = names(coef(f)), coef = unname(coef(f)),
             se = sqrt(diag(f$naive.var)), robust_se = sqrt(diag(f$var)))
}))
write.csv(cox, file.path(dir, "r_cox.csv"), row.names = FALSE)

zph <- do.call(rbind, lapply(names(fits), function(name) {
  do.call(rbind, lapply(c("km", "identity"), function(tr) {
    z <- cox.zph(fits[[name]], transform = tr)$table
    data.frame(model = name, transform = tr, term = rownames(z),
               chisq = z[, "chisq"], df = z[, "df"], p = z[, "p"])
  }))
}))
write.csv(zph, file.path(dir, "r_zph.csv"), row.names = FALSE)
cat(sprintf("R %s, survival %s\n", getRversion(), packageVersion("survival")))
