package simulator

// ProgressEvery exposes progressEvery to the external tests.
const ProgressEvery = progressEvery
