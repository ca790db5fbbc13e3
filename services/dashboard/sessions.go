package dashboard

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"sync"
	"time"
)

// session is a logged-in browser, held server side; the browser holds only
// its random id in a cookie.
type session struct {
	user    string
	role    string
	expires time.Time
}

// sessions holds the logged-in browsers. Ids are 256 random bits; a session
// ends at its expiry or at logout, whichever comes first.
type sessions struct {
	ttl time.Duration
	max int

	mu sync.Mutex
	m  map[string]session
}

func newSessions(ttl time.Duration, max int) *sessions {
	return &sessions{ttl: ttl, max: max, m: make(map[string]session)}
}

// create starts a session and returns its id and expiry. When max sessions
// are live, the one closest to its expiry ends.
func (s *sessions) create(user, role string) (string, time.Time, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", time.Time{}, fmt.Errorf("session id: %w", err)
	}
	id := base64.RawURLEncoding.EncodeToString(b[:])
	now := time.Now()
	exp := now.Add(s.ttl)
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.m) >= s.max {
		s.pruneLocked(now)
	}
	if len(s.m) >= s.max {
		s.evictLocked()
	}
	s.m[id] = session{user: user, role: role, expires: exp}
	return id, exp, nil
}

// get returns the live session with this id.
func (s *sessions) get(id string) (session, bool) {
	if id == "" {
		return session{}, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ss, ok := s.m[id]
	if ok && !time.Now().Before(ss.expires) {
		delete(s.m, id)
		return session{}, false
	}
	return ss, ok
}

// end ends a session; it reports whether it was live.
func (s *sessions) end(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.m[id]
	delete(s.m, id)
	return ok
}

// count is the number of sessions held (expired ones included until pruned).
func (s *sessions) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.m)
}

func (s *sessions) pruneLocked(now time.Time) {
	for id, ss := range s.m {
		if !now.Before(ss.expires) {
			delete(s.m, id)
		}
	}
}

func (s *sessions) evictLocked() {
	var oldest string
	var at time.Time
	for id, ss := range s.m {
		if oldest == "" || ss.expires.Before(at) {
			oldest, at = id, ss.expires
		}
	}
	delete(s.m, oldest)
}
