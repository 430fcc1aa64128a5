// Command agent is a small FortiGate / FortiManager agent, standard library only, that classifies
// what goes wrong the way the vendor's agent error families do:
//
//	202000 connection failure, 202001 authentication failed, 202002 authorization failed,
//	202003 TLS/SSL certificate error, 202004 timed out; "ok" when every call worked.
//
// Usage: agent SETTINGS.json   (mockfgt check -- ./agent {settings})
//
// It prints what it did on stderr and its verdict as the last line of stdout.
package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"strings"
	"syscall"
	"time"
)

const (
	codeOK             = "ok"
	codeConnection     = "202000"
	codeAuthentication = "202001"
	codeAuthorization  = "202002"
	codeTLS            = "202003"
	codeTimeout        = "202004"
)

// Settings is the file mockfgt check writes for each run (see examples/README.md).
type Settings struct {
	Kind          string  `json:"kind"`
	URL           string  `json:"url"`
	Insecure      bool    `json:"insecure"`
	CA            string  `json:"ca"`
	Cert          string  `json:"cert"`
	Key           string  `json:"key"`
	Timeout       float64 `json:"timeout"`
	Auth          string  `json:"auth"`
	Token         string  `json:"token"`
	TokenIn       string  `json:"token_in"`
	User          string  `json:"user"`
	Password      string  `json:"password"`
	Session       string  `json:"session"`
	Login         string  `json:"login"`
	CSRF          bool    `json:"csrf"`
	AcceptBanner  bool    `json:"accept_banner"`
	VDOM          string  `json:"vdom"`
	ADOM          string  `json:"adom"`
	WorkspaceLock bool    `json:"workspace_lock"`
	TrusthostUser string  `json:"trusthost_user"`
	Write         bool    `json:"write"`
}

// verdict is a failure with its code; the first one ends the agent's run.
type verdict struct {
	code, why string
}

func (v *verdict) Error() string { return v.why }

func fail(code, format string, args ...any) error {
	return &verdict{code, fmt.Sprintf(format, args...)}
}

// classify maps what net/http returned into a code. Certificate problems are x509 errors inside the
// *url.Error; a TLS alert or a protocol mismatch is a "tls:" error; a plain-HTTP answer to a TLS
// hello is a RecordHeaderError.
func classify(err error) *verdict {
	var v *verdict
	if errors.As(err, &v) {
		return v
	}
	var unknown x509.UnknownAuthorityError
	var hostname x509.HostnameError
	var invalid x509.CertificateInvalidError
	var record tls.RecordHeaderError
	var dns *net.DNSError
	var netErr net.Error
	switch {
	case errors.As(err, &unknown), errors.As(err, &hostname), errors.As(err, &invalid), errors.As(err, &record):
		return &verdict{codeTLS, err.Error()}
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.As(err, &dns):
		return &verdict{codeConnection, err.Error()}
	case errors.As(err, &netErr) && netErr.Timeout():
		return &verdict{codeTimeout, err.Error()}
	case strings.Contains(err.Error(), "tls:") || strings.Contains(err.Error(), "x509:"),
		// net/http turns a RecordHeaderError (an HTTP answer to the TLS hello) into this text.
		strings.Contains(err.Error(), "server gave HTTP response to HTTPS client"):
		return &verdict{codeTLS, err.Error()}
	}
	return &verdict{codeConnection, err.Error()}
}

type agent struct {
	cfg    Settings
	client *http.Client
	jar    http.CookieJar
}

func newAgent(cfg Settings) (*agent, error) {
	tlsConfig := &tls.Config{InsecureSkipVerify: cfg.Insecure}
	if cfg.CA != "" && !cfg.Insecure {
		pem, err := os.ReadFile(cfg.CA)
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(pem)
		tlsConfig.RootCAs = pool
	}
	if cfg.Cert != "" {
		pair, err := tls.LoadX509KeyPair(cfg.Cert, cfg.Key)
		if err != nil {
			return nil, err
		}
		tlsConfig.Certificates = []tls.Certificate{pair}
	}
	jar, _ := cookiejar.New(nil)
	transport := &http.Transport{TLSClientConfig: tlsConfig, Proxy: nil}
	timeout := time.Duration(cfg.Timeout * float64(time.Second))
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	client := &http.Client{Transport: transport, Jar: jar, Timeout: timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return &agent{cfg: cfg, client: client, jar: jar}, nil
}

// send makes one call; an error is already a verdict.
func (a *agent) send(method, path string, header http.Header, body []byte) (int, []byte, error) {
	req, err := http.NewRequest(method, a.cfg.URL+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	resp, err := a.client.Do(req)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s %s -> %v\n", method, strings.SplitN(path, "?", 2)[0], err)
		return 0, nil, classify(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return 0, nil, classify(err)
	}
	fmt.Fprintf(os.Stderr, "%s %s -> %d\n", method, strings.SplitN(path, "?", 2)[0], resp.StatusCode)
	return resp.StatusCode, data, nil
}

func byStatus(status int, what string) error {
	switch status {
	case 401, 429:
		return fail(codeAuthentication, "%s: HTTP %d", what, status)
	case 403:
		return fail(codeAuthorization, "%s: HTTP %d", what, status)
	}
	return nil
}

// -- FortiGate ---------------------------------------------------------------------------------

// step is one call of the FortiGate flow; role names it in the verdict.
type step struct {
	role, method, path string
	body               any
}

type fortigateSession struct {
	header http.Header
	query  url.Values
	csrf   string
	via    string // "key" or "cookie" once logged in
}

func (a *agent) fortigate() (err error) {
	s := &fortigateSession{header: http.Header{}, query: url.Values{}}
	switch a.cfg.Auth {
	case "token":
		if a.cfg.TokenIn == "query" {
			s.query.Set("access_token", a.cfg.Token)
		} else if a.cfg.Token != "" {
			s.header.Set("Authorization", "Bearer "+a.cfg.Token)
		}
	case "session":
		s.header.Set("Authorization", "Bearer "+a.cfg.Session)
	case "password":
		if err := a.fortigateLogin(s); err != nil {
			return err
		}
	}
	if a.cfg.VDOM != "" {
		s.query.Set("vdom", a.cfg.VDOM)
	}
	defer func() {
		if s.via == "key" {
			a.api(s, "DELETE", "/api/v2/authentication", nil) //nolint:errcheck // logging out: too late to matter
		} else if s.via == "cookie" {
			a.send("POST", "/logout", nil, nil) //nolint:errcheck
		}
	}()
	const address = "/api/v2/cmdb/firewall/address"
	steps := []step{
		{"status", "GET", "/api/v2/monitor/system/status", nil},
		{"read", "GET", address, nil},
	}
	if a.cfg.Write {
		name := fmt.Sprintf("agent-probe-%d", os.Getpid())
		steps = append(steps,
			step{"write", "POST", address, map[string]string{"name": name, "subnet": "192.0.2.1/32"}},
			step{"cleanup", "DELETE", address + "/" + name, nil})
	}
	for _, step := range steps {
		status, err := a.api(s, step.method, step.path, step.body)
		if err != nil {
			return err
		}
		if err := byStatus(status, step.role); err != nil {
			return err
		}
	}
	return nil
}

func (a *agent) api(s *fortigateSession, method, path string, body any) (int, error) {
	header := s.header.Clone()
	var data []byte
	if body != nil {
		data, _ = json.Marshal(body)
		header.Set("Content-Type", "application/json")
	}
	if s.csrf != "" && a.cfg.CSRF && method != "GET" {
		header.Set("X-CSRFTOKEN", s.csrf)
	}
	if len(s.query) > 0 {
		path += "?" + s.query.Encode()
	}
	status, _, err := a.send(method, path, header, data)
	return status, err
}

func (a *agent) fortigateLogin(s *fortigateSession) error {
	if a.cfg.Login == "authentication" {
		body, _ := json.Marshal(map[string]any{"username": a.cfg.User, "secretkey": a.cfg.Password,
			"password": a.cfg.Password, "request_key": true, "ack_pre_disclaimer": true,
			"ack_post_disclaimer": a.cfg.AcceptBanner})
		status, data, err := a.send("POST", "/api/v2/authentication",
			http.Header{"Content-Type": {"application/json"}}, body)
		if err != nil {
			return err
		}
		if status != 401 && status != 404 { // 401/404: no such API before 6.4.2, the form login it is
			if err := byStatus(status, "login"); err != nil {
				return err
			}
			var answer struct {
				StatusMessage string `json:"status_message"`
				SessionKey    string `json:"session_key"`
			}
			if json.Unmarshal(data, &answer) != nil || answer.StatusMessage != "LOGIN_SUCCESS" || answer.SessionKey == "" {
				return fail(codeAuthentication, "login refused: %.80s", data)
			}
			s.header.Set("Authorization", "Bearer "+answer.SessionKey)
			s.via = "key"
			return nil
		}
	}
	form := url.Values{"username": {a.cfg.User}, "secretkey": {a.cfg.Password}, "ajax": {"1"}}
	status, data, err := a.send("POST", "/logincheck",
		http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}, []byte(form.Encode()))
	if err != nil {
		return err
	}
	if err := byStatus(status, "login"); err != nil {
		return err
	}
	if status >= 300 || !bytes.HasPrefix(data, []byte("1")) {
		return fail(codeAuthentication, "login refused: %.40s", data)
	}
	s.via = "cookie"
	base, _ := url.Parse(a.cfg.URL)
	for _, c := range a.jar.Cookies(base) { // ccsrftoken before 7.0, ccsrftoken_<port>[_<suffix>] after
		value := strings.Trim(c.Value, `"`)
		if (c.Name == "ccsrftoken" || strings.HasPrefix(c.Name, "ccsrftoken_") || strings.HasPrefix(c.Name, "ccsrf_token_")) &&
			value != "" && value != "0%260" {
			s.csrf = value
		}
	}
	if a.cfg.AcceptBanner {
		if _, _, err := a.send("POST", "/logindisclaimer",
			http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}, []byte("confirm=1")); err != nil {
			return err
		}
	}
	return nil
}

// -- FortiManager ------------------------------------------------------------------------------

// A FortiManager answers HTTP 200 and says what happened in result[0].status.code; the same -11
// means a refused credential on /sys/status (open to every admin) and a missing permission later.
type fortimanagerSession struct {
	session  string
	verified bool
}

type rpcAnswer struct {
	Session any `json:"session"`
	Result  json.RawMessage
}

type rpcResult struct {
	Status struct {
		Code int `json:"code"`
	} `json:"status"`
	Data json.RawMessage `json:"data"`
}

func (a *agent) rpcRaw(s *fortimanagerSession, method, path string, params map[string]any) (int, rpcResult, string, error) {
	entry := map[string]any{"url": path}
	for k, v := range params {
		entry[k] = v
	}
	call := map[string]any{"id": 1, "method": method, "params": []any{entry}}
	if s.session != "" {
		call["session"] = s.session
	}
	body, _ := json.Marshal(call)
	header := http.Header{"Content-Type": {"application/json"}}
	target := "/jsonrpc"
	if a.cfg.Auth == "token" {
		if a.cfg.TokenIn == "query" {
			target += "?" + url.Values{"access_token": {a.cfg.Token}}.Encode()
		} else if a.cfg.Token != "" {
			header.Set("Authorization", "Bearer "+a.cfg.Token)
		}
	}
	status, data, err := a.send("POST", target, header, body)
	var result rpcResult
	var session string
	if err == nil {
		var answer rpcAnswer
		if json.Unmarshal(data, &answer) == nil {
			if text, ok := answer.Session.(string); ok {
				session = text
			}
			var list []rpcResult
			if json.Unmarshal(answer.Result, &list) == nil && len(list) > 0 {
				result = list[0]
			} else {
				json.Unmarshal(answer.Result, &result) //nolint:errcheck // some builds send a bare object
			}
		}
	}
	return status, result, session, err
}

func (a *agent) rpc(s *fortimanagerSession, role, method, path string, params map[string]any) (json.RawMessage, error) {
	status, result, session, err := a.rpcRaw(s, method, path, params)
	if err != nil {
		return nil, err
	}
	if err := byStatus(status, role); err != nil {
		return nil, err
	}
	if role == "login" {
		s.session = session
	}
	switch code := result.Status.Code; code {
	case 0:
		return result.Data, nil
	case -22:
		return nil, fail(codeAuthentication, "%s: -22 login failed", role)
	case -10147, -20055:
		return nil, fail(codeAuthorization, "%s: %d", role, code)
	case -11:
		if role == "login" {
			return nil, fail(codeAuthorization, "login: -11 (rpc-permit none)")
		}
		if s.verified {
			// A -11 after the status call took the credential: a permission, unless the session died since.
			if _, again, _, err := a.rpcRaw(s, "get", "/sys/status", nil); err == nil && again.Status.Code == -11 {
				return nil, fail(codeAuthentication, "%s: -11, the session is gone", role)
			}
			return nil, fail(codeAuthorization, "%s: -11 no permission", role)
		}
		if method == "get" {
			return nil, fail(codeAuthentication, "%s: -11", role)
		}
		return nil, fail(codeAuthorization, "%s: -11", role)
	}
	return result.Data, nil // -2, -3, -6...: the device took the credential
}

func (a *agent) fortimanager() error {
	s := &fortimanagerSession{}
	if a.cfg.Auth == "session" {
		s.session = a.cfg.Session
	}
	adom := a.cfg.ADOM
	if adom == "" {
		adom = "root"
	}
	locked := false
	if a.cfg.Auth == "password" {
		if _, err := a.rpc(s, "login", "exec", "/sys/login/user",
			map[string]any{"data": map[string]string{"user": a.cfg.User, "passwd": a.cfg.Password}}); err != nil {
			return err
		}
		defer a.rpcRaw(s, "exec", "/sys/logout", nil) //nolint:errcheck
	}
	workspace := "/dvmdb/adom/" + adom + "/workspace"
	defer func() {
		if locked {
			a.rpcRaw(s, "exec", workspace+"/unlock", nil) //nolint:errcheck
		}
	}()
	if _, err := a.rpc(s, "status", "get", "/sys/status", nil); err != nil {
		return err
	}
	s.verified = true
	modeData, err := a.rpc(s, "mode", "get", "/cli/global/system/global",
		map[string]any{"fields": []string{"workspace-mode", "adom-status"}})
	if err != nil {
		return err
	}
	var mode map[string]any
	json.Unmarshal(modeData, &mode) //nolint:errcheck
	inWorkspace := false
	if value, ok := mode["workspace-mode"]; ok && value != nil && value != "disabled" && value != 0.0 {
		inWorkspace = true
	}
	address := "/pm/config/adom/" + adom + "/obj/firewall/address"
	if _, err := a.rpc(s, "read", "get", address, nil); err != nil {
		return err
	}
	if a.cfg.Write {
		lock := inWorkspace && a.cfg.WorkspaceLock
		name := fmt.Sprintf("agent-probe-%d", os.Getpid())
		if lock {
			if _, err := a.rpc(s, "lock", "exec", workspace+"/lock", nil); err != nil {
				return err
			}
			locked = true
		}
		data := map[string]any{"name": name, "subnet": []string{"192.0.2.1", "255.255.255.255"}}
		if _, err := a.rpc(s, "write", "add", address, map[string]any{"data": data}); err != nil {
			return err
		}
		if _, err := a.rpc(s, "cleanup", "delete", address+"/"+name, nil); err != nil {
			return err
		}
		if lock {
			if _, err := a.rpc(s, "commit", "exec", workspace+"/commit", nil); err != nil {
				return err
			}
		}
	}
	if a.cfg.TrusthostUser != "" {
		admin := "/cli/global/system/admin/user/" + a.cfg.TrusthostUser
		raw, err := a.rpc(s, "trusthosts-read", "get", admin, nil)
		if err != nil {
			return err
		}
		var current map[string]any
		json.Unmarshal(raw, &current) //nolint:errcheck
		hosts := map[string]any{}
		for k, v := range current {
			if strings.Contains(k, "trusthost") {
				hosts[k] = v
			}
		}
		if _, err := a.rpc(s, "trusthosts", "update", admin, map[string]any{"data": hosts}); err != nil {
			return err
		}
	}
	return nil
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: agent SETTINGS.json")
		os.Exit(2)
	}
	raw, err := os.ReadFile(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	var cfg Settings
	if err := json.Unmarshal(raw, &cfg); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	a, err := newAgent(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	if cfg.Kind == "fortimanager" {
		err = a.fortimanager()
	} else {
		err = a.fortigate()
	}
	if err != nil {
		v := classify(err)
		fmt.Fprintf(os.Stderr, "failed: %s\n", v.why)
		fmt.Println(v.code)
		return
	}
	fmt.Println(codeOK)
}
