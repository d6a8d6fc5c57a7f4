package web

import (
	"encoding/json"
	"errors"
	"slices"
	"testing"

	"github.com/rs/zerolog"
)

type fakeBuses []string

func (f fakeBuses) Problems() []string { return f }

type fakeDB struct{ err error }

func (f fakeDB) Health() error { return f.err }

// TestHealthz: 200 {"status":"ok"} only with every bus live and the
// database taking writes; otherwise 503 naming every problem, buses first.
func TestHealthz(t *testing.T) {
	for _, c := range []struct {
		name  string
		buses fakeBuses
		db    error
		code  int
		want  HealthView
	}{
		{"all well", nil, nil, 200, HealthView{Status: "ok"}},
		{"a bus silent", fakeBuses{"bus a: no meter has answered since 2026-11-30T18:00:00+08:00"}, nil, 503,
			HealthView{Status: "fail", Problems: []string{"bus a: no meter has answered since 2026-11-30T18:00:00+08:00"}}},
		{"database full", nil, errors.New("store: no space left for the database"), 503,
			HealthView{Status: "fail", Problems: []string{"database: store: no space left for the database"}}},
		{"both", fakeBuses{"bus a: port /dev/ttyUSB0 cannot be opened", "bus b: x"}, errors.New("gone"), 503,
			HealthView{Status: "fail", Problems: []string{"bus a: port /dev/ttyUSB0 cannot be opened", "bus b: x", "database: gone"}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, err := New(newFake(), Options{Log: zerolog.Nop(), Buses: c.buses, DB: fakeDB{c.db}, Tokens: testTokens()})
			if err != nil {
				t.Fatal(err)
			}
			resp, body := get(t, s.Handler(), "/healthz")
			var got HealthView
			if err := json.Unmarshal([]byte(body), &got); err != nil {
				t.Fatalf("body %q: %v", body, err)
			}
			if resp.StatusCode != c.code || got.Status != c.want.Status || !slices.Equal(got.Problems, c.want.Problems) {
				t.Errorf("GET /healthz = %d %+v; want %d %+v", resp.StatusCode, got, c.code, c.want)
			}
			if c.code == 200 && body != "{\n  \"status\": \"ok\"\n}\n" {
				t.Errorf("healthy body = %q; want only the status", body)
			}
		})
	}
}
