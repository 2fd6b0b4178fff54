package gateway

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/bay-sandbox/bay/internal/version"
)

// metrics counts requests for GET /metrics (Prometheus text format). Labels
// use the route pattern, never the raw path, so the series stay bounded.
type metrics struct {
	mu       sync.Mutex
	requests map[reqKey]*reqStat
}

type reqKey struct {
	method, route string
	status        int
}

type reqStat struct {
	count   int64
	seconds float64
}

func newMetrics() *metrics { return &metrics{requests: map[reqKey]*reqStat{}} }

func (s *Server) metricsMiddleware(c *fiber.Ctx) error {
	start := time.Now()
	err := c.Next()
	status := c.Response().StatusCode()
	if err != nil {
		// The error handler has not run yet: derive the status it will write.
		status = s.toAPIError(c, err).Status
	}
	route := c.Route().Path
	if route == "/" || route == "" {
		route = "unmatched"
	}
	k := reqKey{method: c.Method(), route: route, status: status}
	s.metrics.mu.Lock()
	st := s.metrics.requests[k]
	if st == nil {
		st = &reqStat{}
		s.metrics.requests[k] = st
	}
	st.count++
	st.seconds += time.Since(start).Seconds()
	s.metrics.mu.Unlock()
	return err
}

func (s *Server) serveMetrics(c *fiber.Ctx) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# HELP bay_build_info Build information.\n# TYPE bay_build_info gauge\nbay_build_info{version=%q} 1\n", version.String())

	if s.leader != nil {
		lead := 0
		if s.leader.Leading() {
			lead = 1
		}
		fmt.Fprintf(&b, "# HELP bay_leader 1 while this gateway leads (runs GC and the warm pools).\n# TYPE bay_leader gauge\nbay_leader %d\n", lead)
		fmt.Fprintf(&b, "# HELP bay_leader_terms_total Times this gateway became leader.\n# TYPE bay_leader_terms_total counter\nbay_leader_terms_total %d\n", s.leader.Terms())
	}

	st := s.svc.Stats()
	b.WriteString("# HELP bay_sessions Sessions the gateway knows, by phase.\n# TYPE bay_sessions gauge\n")
	fmt.Fprintf(&b, "bay_sessions{phase=\"starting\"} %d\nbay_sessions{phase=\"ready\"} %d\nbay_sessions{phase=\"degraded\"} %d\n", st.Starting, st.Running, st.Degraded)
	b.WriteString("# HELP bay_session_starts_total Session starts, by result.\n# TYPE bay_session_starts_total counter\n")
	fmt.Fprintf(&b, "bay_session_starts_total{result=\"ok\"} %d\nbay_session_starts_total{result=\"failed\"} %d\n", st.StartsOK, st.StartsFailed)
	b.WriteString("# HELP bay_session_start_seconds Time to start a session (successful starts).\n# TYPE bay_session_start_seconds summary\n")
	fmt.Fprintf(&b, "bay_session_start_seconds_sum %s\nbay_session_start_seconds_count %d\n", strconv.FormatFloat(st.StartSeconds, 'f', -1, 64), st.StartsOK)

	s.metrics.mu.Lock()
	keys := make([]reqKey, 0, len(s.metrics.requests))
	for k := range s.metrics.requests {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		a, b := keys[i], keys[j]
		if a.route != b.route {
			return a.route < b.route
		}
		if a.method != b.method {
			return a.method < b.method
		}
		return a.status < b.status
	})
	b.WriteString("# HELP bay_http_requests_total HTTP requests, by route pattern and status.\n# TYPE bay_http_requests_total counter\n")
	for _, k := range keys {
		fmt.Fprintf(&b, "bay_http_requests_total{method=%q,route=%q,status=\"%d\"} %d\n", k.method, k.route, k.status, s.metrics.requests[k].count)
	}
	b.WriteString("# HELP bay_http_request_duration_seconds Time spent handling requests.\n# TYPE bay_http_request_duration_seconds summary\n")
	for _, k := range keys {
		r := s.metrics.requests[k]
		lbl := fmt.Sprintf("method=%q,route=%q,status=\"%d\"", k.method, k.route, k.status)
		fmt.Fprintf(&b, "bay_http_request_duration_seconds_sum{%s} %s\nbay_http_request_duration_seconds_count{%s} %d\n",
			lbl, strconv.FormatFloat(r.seconds, 'f', -1, 64), lbl, r.count)
	}
	s.metrics.mu.Unlock()
	c.Set(fiber.HeaderContentType, "text/plain; version=0.0.4; charset=utf-8")
	return c.SendString(b.String())
}
