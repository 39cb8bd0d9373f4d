# The stored rows both mixed-model reference scripts read (sourced by mixed_reference.R and
# lmm_reference.R): Beat the Blues in long form with R's factor levels, and the trajectory
# models' rows of a 600-episode synthetic cohort.
dir <- "tests/data/inference"
btheb <- read.csv(file.path(dir, "btheb.csv"))
btheb$treatment <- factor(btheb$treatment, c("TAU", "BtheB"))
btheb$drug <- factor(btheb$drug, c("No", "Yes"))
btheb$length <- factor(btheb$length, c("<6m", ">6m"))
traj <- read.csv(file.path(dir, "trajectory.csv"))
