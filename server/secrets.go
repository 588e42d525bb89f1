package main

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// The stack's secrets, generated on its first start.
//
// compose.yaml runs "server secrets init /secrets" once per `up`, as the
// one-shot service secrets, on a named volume that the replicas, the Redis
// nodes and the Sentinels mount read-only. It writes each secret that is
// not there yet and keeps the rest, so the secrets are shared by every
// container and survive restarts and `up` again; `down -v` deletes them.
// A variable in the environment (ADMIN_PASSWORD, JWT_SIGNING_KEYS, ...)
// still wins over the file, for people who bring their own and for tests.
// Every run also rewrites published_values, the values no secret may be
// (knownPublicSecrets), for the Redis nodes and Sentinels to check theirs.

// generatedSecret is one file in the secrets directory.
type generatedSecret struct {
	// File is the file's name in the directory.
	File string
	// Env is the variable that overrides the file.
	Env string
	// generate returns a new random value.
	generate func() (string, error)
	// ForRedis is set for the Redis nodes' and Sentinels' passwords: their
	// processes run as another user in another image (redis, uid 101 in
	// the stand-in, 999 in the official one), so those files are readable
	// by every user of the containers that mount the volume.
	ForRedis bool
}

// randomText returns n random bytes as unpadded base64url.
func randomText(n int) func() (string, error) {
	return func() (string, error) {
		b := make([]byte, n)
		if _, err := rand.Read(b); err != nil {
			return "", err
		}
		return base64.RawURLEncoding.EncodeToString(b), nil
	}
}

// randomKey returns "id:base64(n random bytes)", the format of
// SESSION_ENCRYPTION_KEYS and JWT_SIGNING_KEYS.
func randomKey(id string, n int) func() (string, error) {
	return func() (string, error) {
		b := make([]byte, n)
		if _, err := rand.Read(b); err != nil {
			return "", err
		}
		return id + ":" + base64.StdEncoding.EncodeToString(b), nil
	}
}

// generatedSecrets lists every secret the stack generates. The Redis
// nodes and Sentinels read their files by the same names
// (compose/redis-start).
var generatedSecrets = []generatedSecret{
	// 15 random bytes: 20 characters a person can type.
	{File: "admin_password", Env: "ADMIN_PASSWORD", generate: randomText(15)},
	{File: "internal_key", Env: "INTERNAL_KEY", generate: randomText(32)},
	{File: "session_encryption_keys", Env: "SESSION_ENCRYPTION_KEYS", generate: randomKey("k1", 32)},
	{File: "jwt_signing_keys", Env: "JWT_SIGNING_KEYS", generate: randomKey("j1", 32)},
	{File: "redis_app_password", Env: "REDIS_PASSWORD", generate: randomText(24), ForRedis: true},
	{File: "redis_ops_password", Env: "REDIS_OPS_PASSWORD", generate: randomText(24), ForRedis: true},
	{File: "redis_replication_password", Env: "REDIS_REPLICATION_PASSWORD", generate: randomText(24), ForRedis: true},
	{File: "redis_sentinel_password", Env: "REDIS_SENTINEL_PASSWORD", generate: randomText(24), ForRedis: true},
}

// knownPublicSecrets are values that were ever published: the demo
// defaults compose.yaml used to carry and the README printed. Anyone can
// read them, so a replica that is given one refuses to start, and so do
// the Redis nodes and Sentinels: initSecrets writes this list into the
// secrets directory (publishedValuesFile) for compose/redis-start, which
// keeps no copy of its own. Add a value here and both refuse it.
var knownPublicSecrets = map[string]bool{
	"ZuFP0qsAVgUO-aXm":                                true, // ADMIN_PASSWORD
	"IhqeMK2B76FMqPQeLTyrXsur":                        true, // REDIS_PASSWORD
	"y7Qm2VfR0pLxT9cWbN4s":                            true, // REDIS_OPS_PASSWORD
	"Rp4cK0tS8vNq2LwX6mZe":                            true, // REDIS_REPLICATION_PASSWORD
	"Sn7vQe3LkP9xWd2RmT5a":                            true, // REDIS_SENTINEL_PASSWORD
	"k1:hZjzjmRXzc0ePyMyrsgk87T1TaP7eJa3MFd/5bik1MY=": true, // SESSION_ENCRYPTION_KEYS
	"j1:wWoWsy4Tdcxlp0RZmDjAW8ayKNZSUfgc9i3S3oAvMlE=": true, // JWT_SIGNING_KEYS
	"hZjzjmRXzc0ePyMyrsgk87T1TaP7eJa3MFd/5bik1MY=":    true,
	"wWoWsy4Tdcxlp0RZmDjAW8ayKNZSUfgc9i3S3oAvMlE=":    true,
}

// isPublicSecret reports whether v is, or contains, a published value.
func isPublicSecret(v string) bool {
	if knownPublicSecrets[v] {
		return true
	}
	for _, part := range strings.Split(v, ",") {
		part = strings.TrimSpace(part)
		if knownPublicSecrets[part] {
			return true
		}
		if _, key, ok := strings.Cut(part, ":"); ok && knownPublicSecrets[key] {
			return true
		}
	}
	return false
}

// secretOwner is the user the replicas run as (distroless's nonroot):
// the files belong to it, and only it may read the app's own secrets.
const secretOwner = 65532

// publishedValuesFile is the file in the secrets directory that lists
// knownPublicSecrets, one a line, sorted: compose/redis-start refuses a
// Redis password that is a line of it (grep -qxF). Like the Redis
// passwords, it is readable by every user of the containers that mount
// the volume; it holds nothing secret.
const publishedValuesFile = "published_values"

// publishedValues returns knownPublicSecrets as publishedValuesFile holds
// them.
func publishedValues() string {
	return strings.Join(slices.Sorted(maps.Keys(knownPublicSecrets)), "\n")
}

// initSecrets writes every secret missing from dir and reports what it
// did on out, without a single value. Existing files are kept, so running
// it again changes no secret. publishedValuesFile is written on every run
// (compose.yaml runs it on every `up`), so a volume made by an older
// image gets it, and gets the current list.
func initSecrets(dir string, out io.Writer) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := writeSecret(filepath.Join(dir, publishedValuesFile), publishedValues(), 0o444); err != nil {
		return fmt.Errorf("writing %s: %w", publishedValuesFile, err)
	}
	made, kept := 0, 0
	for _, s := range generatedSecrets {
		path := filepath.Join(dir, s.File)
		switch _, err := os.Stat(path); {
		case err == nil:
			kept++
			continue
		case !errors.Is(err, fs.ErrNotExist):
			return err
		}
		v, err := s.generate()
		if err != nil {
			return err
		}
		mode := os.FileMode(0o400)
		if s.ForRedis {
			mode = 0o444
		}
		if err := writeSecret(path, v, mode); err != nil {
			return fmt.Errorf("writing %s: %w", path, err)
		}
		made++
	}
	fmt.Fprintf(out, "secrets: %d generated, %d kept, in %s (read the admin password with: docker compose exec app /app/server admin-password)\n", made, kept, dir)
	return nil
}

// newSecret writes a new value of the secret whose file is name to out,
// without a newline, and nothing else: compose/swarm-deploy pipes it into
// `docker secret create`, so the value never touches a disk outside the
// swarm's own store.
func newSecret(name string, out io.Writer) error {
	for _, s := range generatedSecrets {
		if s.File != name {
			continue
		}
		v, err := s.generate()
		if err != nil {
			return err
		}
		_, err = io.WriteString(out, v)
		return err
	}
	names := make([]string, 0, len(generatedSecrets))
	for _, s := range generatedSecrets {
		names = append(names, s.File)
	}
	return fmt.Errorf("no secret named %q: want one of %s", name, strings.Join(names, ", "))
}

// writeSecret writes v to path atomically (a temporary file renamed into
// place), owned by secretOwner, with mode.
func writeSecret(path, v string, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".new-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.WriteString(v + "\n"); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if os.Geteuid() == 0 {
		if err := tmp.Chown(secretOwner, secretOwner); err != nil {
			tmp.Close()
			return err
		}
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// readSecret returns the secret named file from dir, without the final
// newline; "" when dir is "".
func readSecret(dir, file string) (string, error) {
	if dir == "" {
		return "", nil
	}
	b, err := os.ReadFile(filepath.Join(dir, file))
	if err != nil {
		return "", fmt.Errorf("SECRETS_DIR: %w (the one-shot service secrets writes it on `docker compose up`)", err)
	}
	return strings.TrimSpace(string(b)), nil
}
