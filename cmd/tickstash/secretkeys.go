package main

import (
	"fmt"
	"os"

	"github.com/tickstash/tickstash/gateway"
)

// secretKeyEnv holds the keys themselves, for deployments that pass secrets in the
// environment; --secret-key-file names a file of them.
const secretKeyEnv = "TICKSTASH_SECRET_KEY"

// secretKeyFlags say where the keys that seal signing secrets come from: the gateway
// and the token commands read them alike.
type secretKeyFlags struct {
	file string
}

func (s *secretKeyFlags) register(f *flags) {
	f.String(&s.file, "secret-key-file", "", "file of the keys that seal signing secrets in Redis: ID:BASE64 a line, the sealing key first, older ones after it "+
		"(make one with tickstash token new-key); or put the keys themselves in $"+secretKeyEnv+" (separated by commas)")
}

// load returns the configured keys, or nil when none is configured.
func (s *secretKeyFlags) load() (*gateway.SecretKeys, error) {
	env := os.Getenv(secretKeyEnv)
	switch {
	case s.file != "" && env != "":
		return nil, fmt.Errorf("%w: give --secret-key-file or $%s, not both", errUsage, secretKeyEnv)
	case s.file != "":
		b, err := os.ReadFile(s.file)
		if err != nil {
			return nil, fmt.Errorf("%w: --secret-key-file: %v", errUsage, err)
		}
		keys, err := gateway.ParseSecretKeys(string(b))
		if err != nil {
			return nil, fmt.Errorf("%w: --secret-key-file %s: %v", errUsage, s.file, err)
		}
		return keys, nil
	case env != "":
		keys, err := gateway.ParseSecretKeys(env)
		if err != nil {
			return nil, fmt.Errorf("%w: $%s: %v", errUsage, secretKeyEnv, err)
		}
		return keys, nil
	}
	return nil, nil
}
