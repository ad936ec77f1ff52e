package gateway

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// Signing secrets are kept in Redis encrypted, because the gateway needs them in clear
// to compute HMACs (a hash would not do). Each secret is sealed with AES-256-GCM under a
// secret key of the operator's, with a random 96-bit nonce and the token's id as
// additional data (a sealed secret copied to another token does not open), and stored
// as
//
//	enc:v1:<key id>:<base64url(nonce || ciphertext || tag)>
//
// The key id says which key opens it, so keys can be rotated: configure the new key
// first and the old ones after it (the first seals, every one opens), then re-seal the
// stored secrets with TokenStore.Reseal (`tickstash token reencrypt`), then drop the
// old key. A stored secret without the enc: prefix is one written before encryption
// existed: it is used as is, and Reseal seals it.

// Secret key errors.
var (
	// ErrNoSecretKey is wrapped when a signing secret must be sealed or opened and no
	// secret key is configured.
	ErrNoSecretKey = errors.New("gateway: no secret key configured for signing secrets: set --secret-key-file or TICKSTASH_SECRET_KEY (make a key with `tickstash token new-key`)")
	// ErrSecretKey is wrapped when a sealed secret names a key that is not configured,
	// or does not open with the key of its id (a different key under the same id).
	ErrSecretKey = errors.New("gateway: signing secret does not open")
)

const sealedPrefix = "enc:v1:"

var keyIDPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,32}$`)

// SecretKeys are the keys that seal signing secrets: the first seals, each opens what
// names its id. A nil *SecretKeys has no key: it opens only unsealed secrets.
type SecretKeys struct {
	ids   []string
	aeads map[string]cipher.AEAD
	// aclKey derives the passwords of the namespaces' Redis ACL users (acl.go): an
	// HMAC-SHA256 key made from the sealing key.
	aclKey []byte
}

// aclPassword is the password of Redis ACL user name, derived from the sealing key.
func (k *SecretKeys) aclPassword(name string) string {
	m := hmac.New(sha256.New, k.aclKey)
	m.Write([]byte(name))
	return hex.EncodeToString(m.Sum(nil))
}

// ParseSecretKeys parses keys written as ID:KEY, where ID is 1 to 32 of A-Z a-z 0-9 _ -
// and KEY is 32 bytes in standard or URL-safe base64; keys are separated by newlines,
// commas or spaces, and lines starting with # are comments. The first key seals. It
// returns an error naming the bad entry, without its key material.
func ParseSecretKeys(text string) (*SecretKeys, error) {
	k := &SecretKeys{aeads: map[string]cipher.AEAD{}}
	var fields []string
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		fields = append(fields, strings.FieldsFunc(line, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\r' })...)
	}
	for i, f := range fields {
		id, enc, ok := strings.Cut(f, ":")
		if !ok || !keyIDPattern.MatchString(id) {
			return nil, fmt.Errorf("gateway: secret key %d: want ID:BASE64 with an id of 1 to 32 of A-Z a-z 0-9 _ - (make one with `tickstash token new-key`)", i+1)
		}
		raw, err := base64.StdEncoding.DecodeString(enc)
		if err != nil {
			raw, err = base64.RawURLEncoding.DecodeString(strings.TrimRight(enc, "="))
		}
		if err != nil || len(raw) != 32 {
			return nil, fmt.Errorf("gateway: secret key %q: want 32 bytes in base64 (AES-256)", id)
		}
		if _, dup := k.aeads[id]; dup {
			return nil, fmt.Errorf("gateway: secret key id %q given twice", id)
		}
		block, _ := aes.NewCipher(raw) // 32 bytes: never fails
		aead, _ := cipher.NewGCM(block)
		if len(k.ids) == 0 {
			m := hmac.New(sha256.New, raw)
			m.Write([]byte("tickstash redis acl password key"))
			k.aclKey = m.Sum(nil)
		}
		k.ids = append(k.ids, id)
		k.aeads[id] = aead
	}
	if len(k.ids) == 0 {
		return nil, errors.New("gateway: no secret key given: want ID:BASE64 (make one with `tickstash token new-key`)")
	}
	return k, nil
}

// NewSecretKey returns a fresh random key in ParseSecretKeys's form, id:base64.
func NewSecretKey(id string) (string, error) {
	if !keyIDPattern.MatchString(id) {
		return "", fmt.Errorf("gateway: key id %q: want 1 to 32 of A-Z a-z 0-9 _ -", id)
	}
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return id + ":" + base64.StdEncoding.EncodeToString(b), nil
}

// Current returns the id of the key that seals, or "" for none.
func (k *SecretKeys) Current() string {
	if k == nil {
		return ""
	}
	return k.ids[0]
}

// IDs returns the key ids, the sealing one first.
func (k *SecretKeys) IDs() []string {
	if k == nil {
		return nil
	}
	return append([]string(nil), k.ids...)
}

// seal encrypts secret for token id with the current key.
func (k *SecretKeys) seal(tokenID, secret string) (string, error) {
	if k == nil {
		return "", ErrNoSecretKey
	}
	id := k.ids[0]
	aead := k.aeads[id]
	nonce := make([]byte, aead.NonceSize())
	_, _ = rand.Read(nonce)
	out := aead.Seal(nonce, nonce, []byte(secret), []byte(tokenID))
	return sealedPrefix + id + ":" + base64.RawURLEncoding.EncodeToString(out), nil
}

// open decrypts a stored secret of token id; an unsealed (pre-encryption) one comes
// back as is. It returns an error wrapping ErrNoSecretKey or ErrSecretKey.
func (k *SecretKeys) open(tokenID, stored string) (string, error) {
	rest, ok := strings.CutPrefix(stored, sealedPrefix)
	if !ok {
		return stored, nil
	}
	id, enc, _ := strings.Cut(rest, ":")
	if k == nil {
		return "", fmt.Errorf("%w (token %s's secret is sealed with key %q)", ErrNoSecretKey, tokenID, id)
	}
	aead, ok := k.aeads[id]
	if !ok {
		return "", fmt.Errorf("%w: token %s's secret is sealed with key %q, which is not configured (have %s): add it to --secret-key-file or TICKSTASH_SECRET_KEY",
			ErrSecretKey, tokenID, id, strings.Join(k.ids, ", "))
	}
	raw, err := base64.RawURLEncoding.DecodeString(enc)
	if err != nil || len(raw) < aead.NonceSize()+aead.Overhead() {
		return "", fmt.Errorf("%w: token %s's sealed secret is corrupt", ErrSecretKey, tokenID)
	}
	plain, err := aead.Open(nil, raw[:aead.NonceSize()], raw[aead.NonceSize():], []byte(tokenID))
	if err != nil {
		return "", fmt.Errorf("%w: token %s's secret does not open with the configured key %q: the key under that id is not the one that sealed it (check --secret-key-file or TICKSTASH_SECRET_KEY)",
			ErrSecretKey, tokenID, id)
	}
	return string(plain), nil
}

// sealedWith returns the key id a stored secret is sealed with, or "" for an unsealed one.
func sealedWith(stored string) string {
	rest, ok := strings.CutPrefix(stored, sealedPrefix)
	if !ok {
		return ""
	}
	id, _, _ := strings.Cut(rest, ":")
	return id
}
