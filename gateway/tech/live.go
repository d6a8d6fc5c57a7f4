package tech

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"text/tabwriter"
	"time"
)

// LiveMeter is a meter as the running gateway shows it on
// GET /api/v1/meters/{id}: its latest reading, taken by the gateway that
// owns the bus. Only the fields a technician reads are decoded.
type LiveMeter struct {
	ID          string            `json:"id"`
	Bus         string            `json:"bus"`
	Address     int               `json:"address"`
	Model       string            `json:"model"`
	Online      bool              `json:"online"`
	ReadingTime *time.Time        `json:"reading_time"`
	ImportKWh   string            `json:"import_kwh"`
	Energy      map[string]string `json:"energy_kwh"`
	Values      map[string]Value  `json:"values"`
	Relay       struct {
		Desired string `json:"desired"`
		Actual  string `json:"actual"`
	} `json:"relay"`
	Stats struct {
		LastError string `json:"last_error"`
	} `json:"stats"`
}

// APIBase is the base URL of the gateway's API for its http.listen
// address: a wildcard or empty host is reached on the loopback address.
func APIBase(listen string) (string, error) {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "", fmt.Errorf("http.listen %q: %w", listen, err)
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port), nil
}

// FetchMeter asks the gateway at base for meter id's live picture. token,
// if not empty, is sent as a bearer token. The request gives up after 5 s.
func FetchMeter(ctx context.Context, base, token, id string) (LiveMeter, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	u := base + "/api/v1/meters/" + url.PathEscape(id)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return LiveMeter{}, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return LiveMeter{}, fmt.Errorf("ask the gateway at %s: %w (is it running? check http.listen in the configuration, or give --url)", base, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return LiveMeter{}, fmt.Errorf("read the gateway's answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error string `json:"error"`
		}
		_ = json.Unmarshal(body, &e)
		msg := fmt.Sprintf("gateway at %s: %s", base, resp.Status)
		if e.Error != "" {
			msg += ": " + e.Error
		}
		if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
			msg += " (give an API token with --token)"
		}
		return LiveMeter{}, errors.New(msg)
	}
	var m LiveMeter
	if err := json.Unmarshal(body, &m); err != nil {
		return LiveMeter{}, fmt.Errorf("gateway at %s: unreadable answer: %w", base, err)
	}
	return m, nil
}

// WriteLive prints m's latest reading with its age at now, one value a line.
func WriteLive(w io.Writer, m LiveMeter, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "meter\t%s (%s), bus %s, address %d, through the running gateway\n", m.ID, m.Model, m.Bus, m.Address)
	if m.ReadingTime == nil {
		fmt.Fprintf(tw, "reading\tnone yet\n")
	} else {
		age := now.Sub(*m.ReadingTime).Round(100 * time.Millisecond)
		fmt.Fprintf(tw, "reading\ttaken %s ago, at %s\n", age, m.ReadingTime.Format(time.RFC3339))
	}
	online := "online"
	if !m.Online {
		online = "OFFLINE"
	}
	fmt.Fprintf(tw, "state\t%s\n", online)
	if m.Stats.LastError != "" {
		fmt.Fprintf(tw, "last error\t%s\n", m.Stats.LastError)
	}
	if m.ImportKWh != "" {
		fmt.Fprintf(tw, "import_kwh\t%s\tkWh\n", m.ImportKWh)
	}
	for _, q := range sortedKeys(m.Energy) {
		fmt.Fprintf(tw, "%s\t%s\tkWh\n", q, m.Energy[q])
	}
	for _, q := range sortedKeys(m.Values) {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", q, trimFloat(m.Values[q].Value), m.Values[q].Unit)
	}
	if m.Relay.Actual != "" {
		fmt.Fprintf(tw, "relay\t%s (wanted %s)\t\n", m.Relay.Actual, m.Relay.Desired)
	}
	return tw.Flush()
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
