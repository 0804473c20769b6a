// Package als trains an implicit-feedback matrix factorization with
// alternating least squares (Hu, Koren, Volinsky 2008, "Collaborative
// Filtering for Implicit Feedback Datasets").
//
// For a user×item matrix R of strengths r_ui (from sparse.Builder) it finds
// user factors X and item factors Y minimising
//
//	Σ_{u,i} c_ui (p_ui − x_u·y_i)² + Σ_u λ_u‖x_u‖² + Σ_i λ_i‖y_i‖²
//
// with confidence c_ui = 1 + α·r_ui and preference p_ui = 1 for observed
// pairs, c_ui = 1 and p_ui = 0 for all others. λ_u = Hyperparameters.Reg(n_u)
// is the frequency-scaled regularization of Rendle et al. 2021 ("Revisiting
// the Performance of iALS on Item Recommendation Benchmarks"), applied the
// same way to items; the serving fold-in (mf.Model.FoldIn) uses the same
// function, so a folded-in user is exactly a training user-step.
//
// Each half-step fixes one side and solves, for every row, the f×f system
//
//	(YᵀY + Σ_{i∈N(u)} (c_ui−1) y_i y_iᵀ + λ_u I) x_u = Σ_{i∈N(u)} c_ui y_i
//
// where YᵀY is computed once per half-step, so a row costs O(n_u·f) plus the
// solve. Two solvers are offered:
//
//   - "cg" (default): a few conjugate-gradient steps per row, warm-started
//     from the previous factors, as in Takács, Pilászy, Tikk 2011 and the
//     `implicit` library. The system matrix is never formed; its product
//     with a vector is YᵀY·v + Σ (c−1)(y·v) y + λ v, all in float32.
//   - "cholesky": the exact solution, forming the system in float64 and
//     factorising it; O(n_u·f² + f³) per row. For tests and small f.
//
// Rows are solved in parallel by Config.Workers goroutines pulling chunks of
// rows; a row's solution depends only on the fixed side and its own previous
// value, and YᵀY and the loss are summed over fixed chunks in a fixed order,
// so the factors for a seed are identical for any number of workers.
// Cancellation is checked between chunks.
package als
