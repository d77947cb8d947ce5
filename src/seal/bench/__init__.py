"""Benchmarks that print figures: `seal bench inner` (seal.bench.inner: both engines side by side) and
`seal bench gpu` (seal.bench.gpu: one capped, staged check of everything a GPU slot can measure)."""
