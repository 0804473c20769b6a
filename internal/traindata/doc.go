// Package traindata builds the data a model is trained and evaluated on:
// events indexed into users and items with the shared weighting, and the
// splits of those events into training data and test cases.
//
// Data (indexed, weighted, timestamped events; see Collector, which weighs
// them exactly as the training matrix does) is split into training data and
// test cases (SplitByTime: each user's latest events are held out;
// LeaveLastOut: each user's last event, users with >= 3 events, the
// next-item protocol of SASRec/S3-Rec/ICLRec; SplitHeld: a given pair of
// files; SplitByUser: strong generalization after Liang et al. 2018, whole
// users are held out and folded in from 80% of their items, exactly as the
// server folds in a live profile). The retraining job trains on a split's
// Matrix; package eval ranks for its Cases.
package traindata
