package web

import "net/http"

// Health says whether the database takes writes; the store implements it.
type Health interface {
	// Health returns nil while writes are taken, else why not.
	Health() error
}

// Buses says which buses have no live meter; the gateway's health tracker
// implements it.
type Buses interface {
	// Problems returns one line per bus without a live meter, nil when
	// every bus has one.
	Problems() []string
}

// HealthView is the body of /healthz: Status "ok" (200), or "fail" (503)
// with every reason in Problems, buses first, then the database.
type HealthView struct {
	Status   string   `json:"status"`
	Problems []string `json:"problems,omitempty"`
}

// healthz is 200 while the gateway can do its job — every bus has a live
// meter and the database takes writes — and 503 with every reason while it
// cannot: a monitor that shows the body names all that is wrong, not only
// the first thing.
func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	var problems []string
	if s.buses != nil {
		problems = append(problems, s.buses.Problems()...)
	}
	if s.db != nil {
		if err := s.db.Health(); err != nil {
			problems = append(problems, "database: "+err.Error())
		}
	}
	if len(problems) > 0 {
		writeJSON(w, http.StatusServiceUnavailable, HealthView{Status: "fail", Problems: problems})
		return
	}
	writeJSON(w, http.StatusOK, HealthView{Status: "ok"})
}
