// Package client is a Go client of the decision server's HTTP API (aelp
// serve, package serve): Decide, Activate, Outcome and Policy. Errors the
// server answers are *APIError, carrying the field a 400 names and the
// Retry-After of a 503. It knows nothing of Kafka.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/aelp/aelp/serve"
)

// Client calls one server. Its methods are safe for concurrent use.
type Client struct {
	base string
	hc   *http.Client
}

// New returns a client of the server at baseURL ("http://127.0.0.1:8080").
// hc nil uses http.DefaultClient.
func New(baseURL string, hc *http.Client) *Client {
	if hc == nil {
		hc = http.DefaultClient
	}
	return &Client{base: strings.TrimRight(baseURL, "/"), hc: hc}
}

// APIError is an error answer of the server.
type APIError struct {
	// Status is the HTTP status (400 bad request, 404 unknown deferred
	// decision, 503 not now, 500 not logged).
	Status int
	// Field is the request field a 400 names ("body" for the body as a
	// whole).
	Field string
	// Message is the server's explanation.
	Message string
	// RetryAfter is a 503's Retry-After (0 when absent).
	RetryAfter time.Duration
}

func (e *APIError) Error() string {
	if e.Field != "" {
		return fmt.Sprintf("aelp serve: %d: %s: %s", e.Status, e.Field, e.Message)
	}
	return fmt.Sprintf("aelp serve: %d: %s", e.Status, e.Message)
}

// Temporary reports whether retrying later can succeed (a 503).
func (e *APIError) Temporary() bool { return e.Status == http.StatusServiceUnavailable }

// IsBadRequest reports whether err is a 400 and returns the field named.
func IsBadRequest(err error) (field string, ok bool) {
	var ae *APIError
	if errors.As(err, &ae) && ae.Status == http.StatusBadRequest {
		return ae.Field, true
	}
	return "", false
}

// Decide asks for a decision.
func (c *Client) Decide(ctx context.Context, req serve.DecideRequest) (serve.DecideResponse, error) {
	var out serve.DecideResponse
	return out, c.do(ctx, http.MethodPost, "/v1/decide", req, &out)
}

// Activate logs a deferred decision whose impression was shown.
func (c *Client) Activate(ctx context.Context, decisionID string) (serve.ActivateResponse, error) {
	var out serve.ActivateResponse
	return out, c.do(ctx, http.MethodPost, "/v1/activate", serve.ActivateRequest{DecisionID: decisionID}, &out)
}

// Outcome logs an outcome of a decision.
func (c *Client) Outcome(ctx context.Context, req serve.OutcomeRequest) (serve.OutcomeResponse, error) {
	var out serve.OutcomeResponse
	return out, c.do(ctx, http.MethodPost, "/v1/outcome", req, &out)
}

// Policy returns the serving policy.
func (c *Client) Policy(ctx context.Context) (serve.PolicyResponse, error) {
	var out serve.PolicyResponse
	return out, c.do(ctx, http.MethodGet, "/v1/policy", nil, &out)
}

func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("aelp serve %s: encode request: %w", path, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return fmt.Errorf("aelp serve %s: %w", path, err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("aelp serve %s: %w", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("aelp serve %s: read answer: %w", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		return apiError(resp, b)
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("aelp serve %s: decode answer: %w", path, err)
	}
	return nil
}

func apiError(resp *http.Response, body []byte) *APIError {
	e := &APIError{Status: resp.StatusCode}
	var er serve.ErrorResponse
	if json.Unmarshal(body, &er) == nil && er.Error != "" {
		e.Field, e.Message = er.Field, er.Error
	} else {
		e.Message = strings.TrimSpace(string(body))
	}
	if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s >= 0 {
		e.RetryAfter = time.Duration(s) * time.Second
	}
	return e
}
