package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSecretsAreGeneratedOnceAndKept: the first init writes every secret,
// readable by its owner alone; a second init changes none of them; the
// replica's config reads them all from the directory.
func TestSecretsAreGeneratedOnceAndKept(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "secrets")
	var out bytes.Buffer
	if err := run(context.Background(), []string{"server", "secrets", "init", dir}, env(nil), &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "8 generated, 0 kept") {
		t.Errorf("first init said %q", out.String())
	}
	first := map[string]string{}
	for _, s := range generatedSecrets {
		path := filepath.Join(dir, s.File)
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatalf("%s was not generated: %v", s.File, err)
		}
		if want := map[bool]os.FileMode{false: 0o400, true: 0o444}[s.ForRedis]; fi.Mode().Perm() != want {
			t.Errorf("%s has mode %v, want %v", s.File, fi.Mode().Perm(), want)
		}
		b, _ := os.ReadFile(path)
		first[s.File] = string(b)
		if strings.Contains(out.String(), strings.TrimSpace(string(b))) {
			t.Errorf("init printed the value of %s", s.File)
		}
	}
	out.Reset()
	if err := run(context.Background(), []string{"server", "secrets", "init", dir}, env(nil), &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "0 generated, 8 kept") {
		t.Errorf("second init said %q", out.String())
	}
	for file, v := range first {
		if b, _ := os.ReadFile(filepath.Join(dir, file)); string(b) != v {
			t.Errorf("second init changed %s", file)
		}
	}

	c, err := loadConfig(env(map[string]string{"SECRETS_DIR": dir}))
	if err != nil {
		t.Fatalf("config from the generated secrets: %v", err)
	}
	if c.AdminPassword != strings.TrimSpace(first["admin_password"]) || len(c.AdminPassword) != 20 {
		t.Errorf("admin password = %q, want the file's 20 characters", c.AdminPassword)
	}
	if c.InternalKey == "" || c.InternalKey == c.AdminPassword || len(c.JWTKeys) != 1 || len(c.EncryptionKeys) != 1 || c.RedisPassword == "" || c.RedisOpsPassword == "" {
		t.Errorf("a secret is missing from the config")
	}
	// The one documented command prints the password, and nothing else.
	out.Reset()
	if err := run(context.Background(), []string{"server", "admin-password"}, env(map[string]string{"SECRETS_DIR": dir}), &out); err != nil {
		t.Fatal(err)
	}
	if out.String() != c.AdminPassword+"\n" {
		t.Errorf("admin-password printed %q", out.String())
	}
	// The environment wins over the file.
	c, err = loadConfig(env(map[string]string{"SECRETS_DIR": dir, "ADMIN_PASSWORD": "my own admin password"}))
	if err != nil || c.AdminPassword != "my own admin password" {
		t.Errorf("ADMIN_PASSWORD from the environment: %q, %v", c.AdminPassword, err)
	}
}

// TestMissingSecretsDirSaysWhatWritesIt: a SECRETS_DIR without its files
// is an error that names the variable and the service that writes them.
func TestMissingSecretsDirSaysWhatWritesIt(t *testing.T) {
	_, err := loadConfig(env(map[string]string{"SECRETS_DIR": t.TempDir()}))
	if err == nil || !strings.Contains(err.Error(), "JWT_SIGNING_KEYS is not set") || !strings.Contains(err.Error(), "secrets") {
		t.Fatalf("err = %v", err)
	}
}

// TestPublishedDemoSecretsRefuseToStart: every value compose.yaml once
// carried as a default is refused, wherever it comes from, and the error
// does not repeat it.
func TestPublishedDemoSecretsRefuseToStart(t *testing.T) {
	base := map[string]string{"SESSION_ENCRYPTION_KEYS": testEncKey, "JWT_SIGNING_KEYS": testJWTKey}
	for _, tc := range []struct{ name, value string }{
		{"ADMIN_PASSWORD", "ZuFP0qsAVgUO-aXm"},
		{"REDIS_PASSWORD", "IhqeMK2B76FMqPQeLTyrXsur"},
		{"REDIS_OPS_PASSWORD", "y7Qm2VfR0pLxT9cWbN4s"},
		{"SESSION_ENCRYPTION_KEYS", "k1:hZjzjmRXzc0ePyMyrsgk87T1TaP7eJa3MFd/5bik1MY="},
		{"JWT_SIGNING_KEYS", "j1:wWoWsy4Tdcxlp0RZmDjAW8ayKNZSUfgc9i3S3oAvMlE="},
		// Under another key id, or as the second key of a rotation.
		{"JWT_SIGNING_KEYS", testJWTKey + ",old:wWoWsy4Tdcxlp0RZmDjAW8ayKNZSUfgc9i3S3oAvMlE="},
	} {
		m := map[string]string{}
		for k, v := range base {
			m[k] = v
		}
		m[tc.name] = tc.value
		_, err := loadConfig(env(m))
		if err == nil || !strings.Contains(err.Error(), tc.name+" is a value this project once published") {
			t.Errorf("%s=<published value>: err = %v", tc.name, err)
			continue
		}
		if strings.Contains(err.Error(), strings.TrimPrefix(tc.value, "j1:")[:10]) {
			t.Errorf("the error repeats the value: %v", err)
		}
	}
	// The same from a file in SECRETS_DIR.
	dir := t.TempDir()
	if err := initSecrets(dir, new(bytes.Buffer)); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(dir, "admin_password"))
	if err := os.WriteFile(filepath.Join(dir, "admin_password"), []byte("ZuFP0qsAVgUO-aXm\n"), 0o400); err != nil {
		t.Fatal(err)
	}
	if _, err := loadConfig(env(map[string]string{"SECRETS_DIR": dir})); err == nil || !strings.Contains(err.Error(), "ADMIN_PASSWORD is a value") {
		t.Errorf("a published admin password in SECRETS_DIR: err = %v", err)
	}
}

// TestNewSecretPrintsOneFreshValue: "secrets new NAME" (what
// compose/swarm-deploy pipes into `docker secret create`) prints a value
// of NAME's format, nothing more, a different one each time; a replica
// reads a directory of such values; an unknown name lists the known ones.
func TestNewSecretPrintsOneFreshValue(t *testing.T) {
	dir := t.TempDir()
	for _, s := range generatedSecrets {
		var a, b bytes.Buffer
		for _, out := range []*bytes.Buffer{&a, &b} {
			if err := run(context.Background(), []string{"server", "secrets", "new", s.File}, env(nil), out); err != nil {
				t.Fatalf("secrets new %s: %v", s.File, err)
			}
		}
		if a.Len() < 20 || strings.ContainsAny(a.String(), " \n") {
			t.Errorf("secrets new %s printed %d bytes with space or newline: want one value alone", s.File, a.Len())
		}
		if a.String() == b.String() {
			t.Errorf("secrets new %s printed the same value twice", s.File)
		}
		if err := os.WriteFile(filepath.Join(dir, s.File), a.Bytes(), 0o400); err != nil {
			t.Fatal(err)
		}
	}
	c, err := loadConfig(env(map[string]string{"SECRETS_DIR": dir}))
	if err != nil {
		t.Fatalf("config from the printed secrets: %v", err)
	}
	if len(c.JWTKeys) != 1 || len(c.EncryptionKeys) != 1 || len(c.AdminPassword) != 20 {
		t.Errorf("the printed keys do not make a config: %d JWT keys, %d encryption keys, admin password of %d characters", len(c.JWTKeys), len(c.EncryptionKeys), len(c.AdminPassword))
	}
	err = run(context.Background(), []string{"server", "secrets", "new", "nope"}, env(nil), &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "admin_password") {
		t.Errorf("an unknown name: %v, want an error that lists the names", err)
	}
}

// TestPublishedValuesAreWrittenForRedis: every init writes every known
// published value into published_values, one a line and nothing else,
// readable by the Redis containers' user; a list that is missing or out
// of date (a volume from an older image) is rewritten by the next init,
// which still keeps every secret. compose/redis-start reads that file and
// carries no copy of the values.
func TestPublishedValuesAreWrittenForRedis(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, publishedValuesFile)
	check := func(when string) {
		t.Helper()
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatalf("%s: %v", when, err)
		}
		if fi.Mode().Perm() != 0o444 {
			t.Errorf("%s: %s has mode %v, want 0444 (the Redis containers read it as another user)", when, publishedValuesFile, fi.Mode().Perm())
		}
		b, _ := os.ReadFile(path)
		if !strings.HasSuffix(string(b), "\n") {
			t.Errorf("%s: the last line has no newline", when)
		}
		lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
		got := map[string]bool{}
		for _, l := range lines {
			got[l] = true
		}
		for v := range knownPublicSecrets {
			if !got[v] {
				t.Errorf("%s: %s lacks the published value %.6s...", when, publishedValuesFile, v)
			}
		}
		if len(lines) != len(knownPublicSecrets) || len(got) != len(lines) {
			t.Errorf("%s: %d lines (%d distinct), want the %d known values alone", when, len(lines), len(got), len(knownPublicSecrets))
		}
		// The four Redis passwords compose.yaml once carried.
		for _, v := range []string{"IhqeMK2B76FMqPQeLTyrXsur", "y7Qm2VfR0pLxT9cWbN4s", "Rp4cK0tS8vNq2LwX6mZe", "Sn7vQe3LkP9xWd2RmT5a"} {
			if !got[v] {
				t.Errorf("%s: a published Redis password is not listed", when)
			}
		}
	}
	if err := initSecrets(dir, new(bytes.Buffer)); err != nil {
		t.Fatal(err)
	}
	check("first init")
	before, _ := os.ReadFile(filepath.Join(dir, "redis_app_password"))

	// An older list, then none at all: the next init writes the whole one.
	os.Remove(path)
	if err := os.WriteFile(path, []byte("IhqeMK2B76FMqPQeLTyrXsur\n"), 0o444); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := initSecrets(dir, &out); err != nil {
		t.Fatal(err)
	}
	check("an init over an older list")
	os.Remove(path)
	if err := initSecrets(dir, &out); err != nil {
		t.Fatal(err)
	}
	check("an init over a volume without the list")
	if after, _ := os.ReadFile(filepath.Join(dir, "redis_app_password")); string(after) != string(before) {
		t.Error("rewriting the list changed a secret")
	}
	if !strings.Contains(out.String(), "0 generated, 8 kept") {
		t.Errorf("init said %q: the list is not a secret, and is not counted as one", out.String())
	}

	script, err := os.ReadFile("../compose/redis-start")
	if err != nil {
		t.Fatal(err)
	}
	for v := range knownPublicSecrets {
		if strings.Contains(string(script), v) {
			t.Errorf("compose/redis-start repeats the published value %.6s...: it must read %s", v, publishedValuesFile)
		}
	}
	if !strings.Contains(string(script), "/secrets/"+publishedValuesFile) {
		t.Errorf("compose/redis-start does not read /secrets/%s", publishedValuesFile)
	}
}
