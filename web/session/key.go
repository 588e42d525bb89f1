package session

// Key is a named secret, for encryption or signing. Keys rotate: the first
// of a list is used for new values, every key of the list is accepted.
type Key struct {
	// ID names the key inside tokens and ciphertexts; it is not secret.
	ID string
	// Secret is the key material.
	Secret []byte
}
