package auth

import (
	"testing"
	"time"

	"github.com/rollcall/rollcall/internal/rollcall"
)

// The retirement driver's token: retirement_service true (or "true" from a string-only claim
// mapper) makes the actor the retirement service; anything else does not.
func TestRetirementServiceClaim(t *testing.T) {
	v := NewHS256(testSecret)
	for _, c := range []struct {
		claim any
		want  bool
	}{{true, true}, {"TRUE", true}, {false, false}, {"yes", false}, {nil, false}, {1, false}} {
		claims := localClaims(time.Hour)
		if c.claim != nil {
			claims["retirement_service"] = c.claim
		}
		wantActor(t, v, hsToken(t, claims), rollcall.Actor{Username: "alice", Email: "alice@example.test", RetirementService: c.want})
	}
}
