package redisconn

import (
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
)

func TestOpenPicksTheClientKind(t *testing.T) {
	tests := []struct {
		url  string
		want string
	}{
		{"redis://127.0.0.1:6379/0", "*redis.Client"},
		{"rediss://user:secret@example.com:6380/2", "*redis.Client"},
		{"redis://127.0.0.1:7000?addr=127.0.0.1:7001&addr=127.0.0.1:7002", "*redis.ClusterClient"},
		{"redis://127.0.0.1:26379?master_name=mymaster&addr=127.0.0.1:26380", "*redis.Client"}, // failover client
	}
	for _, tt := range tests {
		c, err := Open(tt.url)
		if err != nil {
			t.Errorf("Open(%q): %v", tt.url, err)
			continue
		}
		got := "*redis.Client"
		if _, ok := c.(*redis.ClusterClient); ok {
			got = "*redis.ClusterClient"
		}
		if got != tt.want {
			t.Errorf("Open(%q) = %T, want %s", tt.url, c, tt.want)
		}
		c.Close()
	}
}

func TestOpenErrorsHidePasswords(t *testing.T) {
	for _, u := range []string{
		"http://127.0.0.1:6379",
		"redis://:hunter2@127.0.0.1:6379/notanumber",
		"redis://:hunter2@127.0.0.1:6379?addr=127.0.0.1:1&bogus=1",
		"::::",
	} {
		_, err := Open(u)
		if err == nil {
			t.Errorf("Open(%q) accepted", u)
			continue
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("Open(%q) error shows the password: %v", u, err)
		}
	}
	if r := Redact("redis://:hunter2@h:1/0"); strings.Contains(r, "hunter2") {
		t.Errorf("Redact = %s", r)
	}
}
