// Package blend adds order-aware terms to the matrix-factorization score:
// item neighbours (cosine of co-occurrence in users' histories) and
// item-to-next-item transitions (what users took next after an item), both
// as bounded top-K lists per item, plus a recency weighting of the fold-in.
//
// For a user whose distinct items, newest first, are r_0, r_1, … with
// profile strengths w_0, w_1, …, an item j scores
//
//	z_mf(j) + W_n·z_n(j) + W_t·z_t(j)
//
//	mf(j) = y_jᵀ x, x = FoldIn(r, w_k·(1 + β·ρ^k))       recency-weighted fold-in
//	n(j)  = Σ_{k < L_n} γ_n^k · sim(r_k, j)               neighbours of recent items
//	t(j)  = Σ_{k < L_t} γ_t^k · P(j | r_k)                transitions from the last items
//
// where each z is the term standardized over all items of the model (mean
// and standard deviation over the catalogue; the MF ones come from the
// factors' mean and Gram matrix, so they are exact without scoring every
// item, and a serving index that scores only candidates gets the same
// numbers). The weights W_n, W_t, β and the decays are chosen by the
// trainer on a validation split carved from the training events (package
// eval), never on the test part, and travel in the model artifact as three
// sections ("neighbors", "transitions", "blend"; byte formats in
// models/README.md). The server computes the same score from the live
// profile per request (package recommend), so offline numbers are what is
// served.
package blend
