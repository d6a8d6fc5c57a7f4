package web

import (
	"context"
	"errors"
	"io"
	"net/http"
	"testing"
	"time"
)

// heldReports builds a finance report only when let through: started
// receives each build's context as it begins, and the build ends when
// release is closed (then it answers) or its context ends (then with the
// context's error, into stopped).
type heldReports struct {
	emptyReports
	started chan context.Context
	release chan struct{}
	stopped chan error
}

func (h *heldReports) Finance(ctx context.Context, _, _ string) ([]byte, error) {
	h.started <- ctx
	select {
	case <-h.release:
		return []byte("Summary\r\n"), nil
	case <-ctx.Done():
		h.stopped <- ctx.Err()
		return nil, ctx.Err()
	}
}

func financeRequest(t *testing.T, ctx context.Context, url string) (*http.Response, string, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/api/v1/reports/finance?month=2026-11&format=csv", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(as(req, RoleFinance))
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp, string(body), err
}

// One finance report is built at a time: a second request while the
// first builds is refused at once with 503, a reason and Retry-After;
// once the first is done the next is built.
func TestReports_FinanceOneAtATime(t *testing.T) {
	h := &heldReports{started: make(chan context.Context, 2), release: make(chan struct{}), stopped: make(chan error, 2)}
	rg := newRig(t, func(o *Options) { o.Reports = h })
	first := make(chan int, 1)
	go func() {
		resp, _, err := financeRequest(t, context.Background(), rg.url)
		if err != nil {
			t.Error(err)
			first <- 0
			return
		}
		first <- resp.StatusCode
	}()
	select {
	case <-h.started:
	case <-time.After(5 * time.Second):
		t.Fatal("the first report's build did not start")
	}
	resp, body, err := financeRequest(t, context.Background(), rg.url)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != financeRetryAfter || body == "" {
		t.Errorf("a second report while one builds = %d, Retry-After %q, %q; want 503, %s and a reason",
			resp.StatusCode, resp.Header.Get("Retry-After"), body, financeRetryAfter)
	}
	close(h.release)
	if code := <-first; code != http.StatusOK {
		t.Fatalf("the first report = %d", code)
	}
	if resp, body, err := financeRequest(t, context.Background(), rg.url); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("a report after the first = %v %q %v", resp, body, err)
	}
}

// A client that goes away stops its report's build (the build has the
// request's context), and frees the turn for the next.
func TestReports_FinanceStopsWhenTheClientGoes(t *testing.T) {
	h := &heldReports{started: make(chan context.Context, 2), release: make(chan struct{}), stopped: make(chan error, 2)}
	rg := newRig(t, func(o *Options) { o.Reports = h })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, _, err := financeRequest(t, ctx, rg.url)
		done <- err
	}()
	var build context.Context
	select {
	case build = <-h.started:
	case <-time.After(5 * time.Second):
		t.Fatal("the build did not start")
	}
	if d, ok := build.Deadline(); !ok || time.Until(d) > financeBuildLimit {
		t.Errorf("the build's deadline %v %v; want within %s", d, ok, financeBuildLimit)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("the client's request ended with %v", err)
	}
	select {
	case err := <-h.stopped:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("the build stopped with %v; want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the build went on after its client went away")
	}
	close(h.release)
	// The turn is free again (the handler returns just after the build).
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp, _, err := financeRequest(t, context.Background(), rg.url)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the stopped build a report = %d", resp.StatusCode)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
