package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/rs/zerolog"

	"mallgrid/gateway/web"
)

// Script timing.
const (
	// scriptPoll is how often the script looks at the low tenant's account.
	scriptPoll = 500 * time.Millisecond
	// requestTimeout bounds one request of the script to the gateway.
	requestTimeout = 5 * time.Second
	// topUpTries is how often the top-up is sent before the script gives
	// up; sending it again is safe, as its ref is credited once.
	topUpTries = 3
)

// api is the script's client of the gateway's HTTP API: it acts as an
// operator would, with the demo's bearer token.
type api struct {
	url, token string // url ends in "/"
	client     *http.Client
}

func newAPI(url, token string) *api {
	return &api{url: url, token: token, client: &http.Client{Timeout: requestTimeout}}
}

// do sends one request and decodes a 2xx reply's JSON into out; any other
// status is an error carrying the reply's reason.
func (a *api) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.url+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+a.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := a.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, bytes.TrimSpace(raw))
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(raw, out)
}

// play runs the script once the gateway serves at url: it waits for the
// low tenant to be cut off — the account policy's decision and the relays
// read back open — leaves that on the page for Show, then tops the tenant
// up through the API as an operator recording a payment would. The top-up
// restores the tenant; the gateway does that, not the script. It returns
// when done or when ctx ends.
func (s *story) play(ctx context.Context, a *api, log zerolog.Logger) {
	p := s.low
	if p == nil {
		return
	}
	log = log.With().Str("tenant", p.tenant.ID).Logger()
	if !s.awaitCutOff(ctx, a, log) {
		return
	}
	log.Info().Str("top_up_in", s.pace.Show.String()).Msgf("story: %s is cut off; the demo tops it up in %s", p.tenant.Name, s.pace.Show)
	if !sleep(ctx, s.pace.Show) {
		return
	}
	req := web.TopUpRequest{Amount: s.topUp.String(), Ref: s.ref, Channel: "wechat"}
	var err error
	for try := 1; try <= topUpTries; try++ {
		var entry web.EntryView
		if err = a.do(ctx, http.MethodPost, "api/v1/accounts/"+p.tenant.ID+"/topups", req, &entry); err == nil {
			log.Info().Str("ref", req.Ref).Str("amount", req.Amount).Str("balance", entry.Balance).
				Msgf("story: %s topped up with %s (wechat, ref %s)", p.tenant.Name, req.Amount, req.Ref)
			return
		}
		if ctx.Err() != nil || !sleep(ctx, time.Second) {
			return
		}
	}
	log.Error().Err(err).Str("ref", req.Ref).Msg("story: the demo's top-up failed; top the tenant up by hand (see the banner's curl line)")
}

// awaitCutOff waits until the low tenant's account is cut off and every
// one of its meters reads back open; false when ctx ended first. A
// request that fails is logged once and tried again.
func (s *story) awaitCutOff(ctx context.Context, a *api, log zerolog.Logger) bool {
	logged := false
	for {
		cut, err := s.cutOff(ctx, a)
		switch {
		case err != nil && ctx.Err() == nil && !logged:
			log.Warn().Err(err).Msg("story: cannot read the tenant's state; trying again")
			logged = true
		case cut:
			return true
		}
		if !sleep(ctx, scriptPoll) {
			return false
		}
	}
}

// cutOff reports whether the low tenant is cut off and all its relays
// read back open.
func (s *story) cutOff(ctx context.Context, a *api) (bool, error) {
	var acct web.AccountView
	if err := a.do(ctx, http.MethodGet, "api/v1/accounts/"+s.low.tenant.ID, nil, &acct); err != nil {
		return false, err
	}
	if acct.State != "cut_off" {
		return false, nil
	}
	for _, id := range s.low.meters {
		var m web.MeterView
		if err := a.do(ctx, http.MethodGet, "api/v1/meters/"+id, nil, &m); err != nil {
			return false, err
		}
		if m.Relay.Actual != "open" {
			return false, nil
		}
	}
	return true, nil
}

// sleep waits d; false when ctx ended first.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
