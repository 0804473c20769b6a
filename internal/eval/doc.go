// Package eval measures recommendation quality offline, the way the
// retraining job decides whether a new model is good enough to publish.
//
// It evaluates a split built by package traindata (training data plus test
// cases: a time holdout, leave-last-out, a given pair of files, or whole
// users held out and folded in from 80% of their items, exactly as the
// server folds in a live profile). Every Recommender (ALS through
// mf.Model.FoldIn, popularity, item-kNN) then ranks ALL items for every test
// case, without sampled negatives; the items the case already knows are never
// ranked, so a held-out item the user also has in training is a miss. Ties
// are broken against the test item: an item scoring exactly what a test item
// scores ranks above it (sparse scores such as item-neighbour scores would
// otherwise gain hits from ties at zero). Evaluate reports, per cut-off K:
//
//	hr@K             1 if any held-out item is in the top K
//	recall@K         hits / |test|                        (the literature's Recall@K)
//	recall_capped@K  hits / min(K, |test|)                (Liang et al. 2018)
//	ndcg@K           DCG / ideal DCG over min(K, |test|) positions, binary relevance
//	map@K            Σ_{hit at rank r} precision@r / min(K, |test|)
//	coverage@K       distinct items in any top K / number of items
//
// averaged over test cases (coverage: over the catalogue). Users are scored
// in blocks with one matrix product per block (mf.Model.ScoresBlock) and
// top-K selection (topk), in parallel.
package eval
