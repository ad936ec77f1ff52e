package signals

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/tickstash/tickstash/market"
)

// PermissionsConfig configures NATSPermissions.
type PermissionsConfig struct {
	StreamConfig
	// InboxPrefix is the prefix of the users' reply subjects (nats.CustomInboxPrefix);
	// they may subscribe to <InboxPrefix>.> only. The zero value means "_INBOX". A
	// per-user prefix such as "_INBOX_<user>" keeps users from reading each other's
	// replies; Password-less users get the shared one.
	InboxPrefix string
	// Password returns the password entry of a user, e.g. a bcrypt hash; nil or "" leaves
	// it out, for the operator to fill in or to pair with nkeys.
	Password func(user string) string
}

// NATSUser is one user entry of a nats-server authorization block.
type NATSUser struct {
	User        string              `json:"user"`
	Password    string              `json:"password,omitempty"`
	Permissions NATSUserPermissions `json:"permissions"`
}

// NATSUserPermissions are a user's subject allow-lists.
type NATSUserPermissions struct {
	Publish   NATSSubjects `json:"publish"`
	Subscribe NATSSubjects `json:"subscribe"`
}

// NATSSubjects is an allow-list.
type NATSSubjects struct {
	Allow []string `json:"allow"`
}

// FilterSubjects returns the signal subjects an entitlement covers, as few subject
// patterns as its lists allow: one per (strategy, symbol) pair, with '*' for Any, or
// "<prefix>.>" when both are Any. It returns nil when the entitlement grants nothing.
func FilterSubjects(e Entitlement, sc StreamConfig) []string {
	sc = sc.withDefaults()
	strategies, symbols := e.Strategies, e.Symbols
	if slices.Contains(strategies, Any) {
		strategies = []string{"*"}
	}
	if slices.Contains(symbols, Any) {
		symbols = []string{"*"}
	}
	if len(strategies) == 1 && strategies[0] == "*" && len(symbols) == 1 && symbols[0] == "*" {
		return []string{sc.SubjectPrefix + ".>"}
	}
	var out []string
	for _, st := range strategies {
		for _, sym := range symbols {
			out = append(out, sc.Subject(st, "*", market.Symbol(sym)))
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// NATSPermissions generates nats-server users whose permissions enforce the
// entitlements on the server: each user may create consumers on the signal stream only
// with a filter subject within its entitlement (the server checks the filter against
// the $JS.API.CONSUMER.CREATE.<stream>.<name>.<filter> subject, nats-server 2.9 and
// later), fetch from and acknowledge its consumers, and receive replies on its inbox.
// Users are ordered by name; an entitlement that fails Validate is an error.
func NATSPermissions(ents []Entitlement, cfg PermissionsConfig) ([]NATSUser, error) {
	sc := cfg.StreamConfig.withDefaults()
	inbox := cfg.InboxPrefix
	if inbox == "" {
		inbox = "_INBOX"
	}
	var users []NATSUser
	for _, e := range ents {
		if err := e.Validate(); err != nil {
			return nil, err
		}
		api := "$JS.API."
		pub := []string{
			api + "INFO",
			api + "STREAM.INFO." + sc.Stream,
			api + "CONSUMER.MSG.NEXT." + sc.Stream + ".*",
			api + "CONSUMER.INFO." + sc.Stream + ".*",
			api + "CONSUMER.DELETE." + sc.Stream + ".*",
			"$JS.ACK." + sc.Stream + ".>",
		}
		for _, f := range FilterSubjects(e, sc) {
			pub = append(pub, api+"CONSUMER.CREATE."+sc.Stream+".*."+f)
		}
		u := NATSUser{User: e.User, Permissions: NATSUserPermissions{
			Publish:   NATSSubjects{Allow: pub},
			Subscribe: NATSSubjects{Allow: []string{inbox + ".>"}},
		}}
		if cfg.Password != nil {
			u.Password = cfg.Password(e.User)
		}
		users = append(users, u)
	}
	slices.SortFunc(users, func(a, b NATSUser) int { return strings.Compare(a.User, b.User) })
	return users, nil
}

// NATSAuthorizationConf renders users as a nats-server configuration block (the
// configuration format accepts JSON values):
//
//	authorization {
//	  users = [ {"user": "alice", "permissions": {"publish": {"allow": [...]}, ...}} ]
//	}
func NATSAuthorizationConf(users []NATSUser) (string, error) {
	if users == nil {
		users = []NATSUser{}
	}
	data, err := json.MarshalIndent(users, "  ", "  ")
	if err != nil {
		return "", fmt.Errorf("signals: nats users: %w", err)
	}
	return "authorization {\n  users = " + string(data) + "\n}\n", nil
}
