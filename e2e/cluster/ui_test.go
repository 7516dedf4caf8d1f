//go:build e2e

package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/fetch"
	"github.com/chromedp/chromedp"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/mongorelay/mongorelay/e2e/internal/clusterapi"
	"github.com/mongorelay/mongorelay/internal/testenv"
)

// TestStatusPage drives /ui in Debian's headless chromium against a one-node cluster with
// REST users. The page is open without credentials; the browser answers the API's Basic
// challenge with a read-only user's, as a user answers its login prompt: the page shows a
// connector created through the API with its tasks, and its pause button is refused with the
// API's 403, after which the write buttons are disabled. Given an admin's credentials in the
// page's own form, the pause button pauses the connector, as the API then says. A screenshot
// of the page is kept in the test's log directory.
func TestStatusPage(t *testing.T) {
	chromium := testenv.Chromium(t)
	kafka, mongoURI := testenv.Kafka(t), testenv.Mongo(t)
	const shards = 2
	run := fmt.Sprintf("%d", time.Now().UnixNano()%1_000_000_000)
	db, prefix, name := "e2eu_"+run, "e2eu"+run, "orders-"+run

	mc, err := mongo.Connect(options.Client().ApplyURI(mongoURI))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = mc.Disconnect(context.Background()) })
	if _, err := mc.Database(db).Collection("orders").InsertOne(t.Context(), bson.D{{Key: "_id", Value: "seed"}}); err != nil {
		t.Fatalf("seed: %v", err)
	}
	t.Cleanup(func() { _ = mc.Database(db).Drop(context.Background()) })

	logDir := filepath.Join("..", "..", ".cache", "test-logs", "e2e-cluster-ui")
	_ = os.RemoveAll(logDir)
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		t.Fatal(err)
	}
	usersFile := filepath.Join(t.TempDir(), "users.properties")
	viewerPW, opsPW := "pw-viewer-"+run, "pw-ops-"+run
	if err := os.WriteFile(usersFile, []byte("viewer: "+viewerPW+",read-only\nops: "+opsPW+",admin\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	viewer, ops := basicAuthOf("viewer", viewerPW), basicAuthOf("ops", opsPW)

	n := newNode(t, "n1", logDir)
	n.args = nodeArgs(n, "e2eu-"+run, kafka, "--bootstrap", "--http-auth-basic-file", usersFile)
	n.env = []string{"MONGORELAY_HTTP_AUTH_TOKEN="}
	nodes := []*node{n}
	cleanUpNodes(t, logDir, &nodes)
	n.start(t)

	api := restAs(t, n.http)
	clusterapi.WaitFor(t, 30*time.Second, "n1 leading its cluster", func() (bool, string) {
		var ov clusterapi.Overview
		status, body := api(http.MethodGet, "/cluster", "", viewer, &ov)
		return status == http.StatusOK && ov.Leader == n.id, fmt.Sprint(status, " ", body)
	})
	config, _ := json.Marshal(map[string]any{"name": name, "config": clusterapi.ConnectorConfig(mongoURI, db, prefix, shards)})
	if status, body := api(http.MethodPost, "/connectors", string(config), ops, nil); status != http.StatusCreated {
		t.Fatalf("create %s: %d %s", name, status, body)
	}
	connectorState := func() (string, int, string) {
		var st clusterapi.ConnectorStatus
		status, body := api(http.MethodGet, "/connectors/"+name+"/status", "", viewer, &st)
		running := 0
		for _, task := range st.Tasks {
			if task.State == "RUNNING" {
				running++
			}
		}
		return st.Connector.State, running, fmt.Sprint(status, " ", body)
	}
	clusterapi.WaitFor(t, 60*time.Second, "the connector's tasks RUNNING", func() (bool, string) {
		state, running, why := connectorState()
		return state == "RUNNING" && running == shards, why
	})

	browser := newBrowser(t, chromium)
	screenshot := filepath.Join(logDir, "ui.png")
	t.Cleanup(func() { browser.screenshot(t, screenshot) })
	browser.answerBasicChallenges(t, "viewer", viewerPW)
	browser.do(t, "open the page", chromedp.Navigate("http://"+n.http+"/ui"))

	connectorRow := fmt.Sprintf(`tr.connector[data-connector=%q]`, name)
	taskRows := fmt.Sprintf(`tr.task[data-connector=%q]`, name)
	browser.waitJS(t, 20*time.Second, "the connector and its tasks RUNNING on the page", fmt.Sprintf(
		`document.querySelector(%q + " .state")?.textContent === "RUNNING" &&
		 [...document.querySelectorAll(%q)].filter(r => r.querySelector(".state")?.textContent === "RUNNING").length === %d`,
		connectorRow, taskRows, shards))
	browser.waitJS(t, 20*time.Second, "every task's lag and events/s on the page, from its node's figures", fmt.Sprintf(
		`[...document.querySelectorAll(%q)].filter(r => /^[0-9.]+$/.test(r.querySelector('[data-figure="lag"]')?.textContent) &&
		   /^[0-9.]+$/.test(r.querySelector('[data-figure="rate"]')?.textContent)).length === %d`, taskRows, shards))
	browser.waitJS(t, 5*time.Second, "the node and its leader on the page",
		fmt.Sprintf(`document.getElementById("leader").textContent === %q && document.querySelector('#nodes tr[data-node=%q]') !== null`, n.id, n.id))

	pause := connectorRow + ` button[data-action="pause"]`
	browser.do(t, "click pause as the read-only user", chromedp.Click(chromedp.CSS(pause)))
	browser.waitJS(t, 10*time.Second, "the API's 403 on the page, and the write buttons disabled", fmt.Sprintf(
		`document.getElementById("notice").textContent.includes("is read-only") && document.querySelector(%q).disabled`, pause))
	if state, _, why := connectorState(); state != "RUNNING" {
		t.Fatalf("the read-only user's pause changed the connector: %s", why)
	}

	browser.do(t, "open the credentials form", chromedp.Click(chromedp.CSS("#signin-toggle")))
	browser.signIn(t, "ops", opsPW)
	browser.waitJS(t, 10*time.Second, "the pause button enabled for the admin", fmt.Sprintf(`document.querySelector(%q)?.disabled === false`, pause))
	browser.do(t, "click pause as the admin", chromedp.Click(chromedp.CSS(pause)))
	clusterapi.WaitFor(t, 20*time.Second, "the connector PAUSED through the API", func() (bool, string) {
		state, _, why := connectorState()
		return state == "PAUSED", why
	})
	browser.waitJS(t, 10*time.Second, "the connector PAUSED on the page, its resume button enabled", fmt.Sprintf(
		`document.querySelector(%q + " .state")?.textContent === "PAUSED" && document.querySelector(%q + ' button[data-action="resume"]')?.disabled === false`,
		connectorRow, connectorRow))
	t.Logf("the page showed %s with its %d tasks; its pause button paused it; screenshot in %s", name, shards, screenshot)
}

// restAs returns a caller of the REST API at addr: it sends body (JSON) with the
// Authorization header auth, decodes a 2xx answer into out (when not nil) and returns the
// status and body.
func restAs(t *testing.T, addr string) func(method, path, body, auth string, out any) (int, string) {
	client := &http.Client{Timeout: 15 * time.Second}
	return func(method, path, body, auth string, out any) (int, string) {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), method, "http://"+addr+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", auth)
		resp, err := client.Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		data, _ := io.ReadAll(resp.Body)
		if out != nil && resp.StatusCode < 300 {
			if err := json.Unmarshal(data, out); err != nil {
				return resp.StatusCode, fmt.Sprintf("decode %q: %v", data, err)
			}
		}
		return resp.StatusCode, string(data)
	}
}

// browser is one tab of a headless chromium.
type browser struct {
	ctx context.Context
}

// newBrowser starts chromium headless, without its sandbox (the tests run as root), for the
// duration of the test.
func newBrowser(t *testing.T, chromium string) *browser {
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromium), chromedp.NoSandbox,
		chromedp.WindowSize(1280, 900), chromedp.UserDataDir(t.TempDir()))
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(alloc)
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	// The browser lives as long as the context of the first call: one without a timeout.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start %s: %v", chromium, err)
	}
	return &browser{ctx: ctx}
}

// do runs actions in the tab, failing the test with what on an error.
func (b *browser) do(t *testing.T, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		t.Fatalf("%s: %v (the page says: %s)", what, err, b.notice())
	}
}

// answerBasicChallenges makes the browser answer every HTTP authentication challenge with
// user and password, as a user answers its login prompt, until the test ends.
func (b *browser) answerBasicChallenges(t *testing.T, user, password string) {
	t.Helper()
	ctx, cancel := context.WithCancel(b.ctx)
	var wg sync.WaitGroup
	t.Cleanup(func() {
		cancel()
		wg.Wait()
	})
	// Subscribed before Fetch.enable, so that no paused request is missed.
	paused := chromedp.Events(ctx, fetch.RequestPaused)
	challenges := chromedp.Events(ctx, fetch.AuthRequired)
	wg.Go(func() {
		for ev, err := range paused {
			if err != nil {
				return
			}
			_, _ = chromedp.Call(ctx, fetch.ContinueRequest, fetch.ContinueRequestParams{RequestID: ev.RequestID})
		}
	})
	wg.Go(func() {
		for ev, err := range challenges {
			if err != nil {
				return
			}
			_, _ = chromedp.Call(ctx, fetch.ContinueWithAuth, fetch.ContinueWithAuthParams{RequestID: ev.RequestID,
				AuthChallengeResponse: &fetch.AuthChallengeResponse{Response: fetch.AuthChallengeResponseResponseProvideCredentials,
					Username: user, Password: password}})
		}
	})
	handle := true
	if _, err := chromedp.Call(ctx, fetch.Enable, fetch.EnableParams{HandleAuthRequests: &handle}); err != nil {
		t.Fatalf("have the browser answer authentication challenges: %v", err)
	}
}

// signIn gives the page Basic credentials through its credentials form.
func (b *browser) signIn(t *testing.T, user, password string) {
	t.Helper()
	b.do(t, "sign in as "+user,
		chromedp.WaitVisible(chromedp.CSS("#signin-user")),
		chromedp.SendKeys(chromedp.CSS("#signin-user"), user),
		chromedp.SendKeys(chromedp.CSS("#signin-password"), password),
		chromedp.Click(chromedp.CSS(`#signin button[type="submit"]`)))
}

// waitJS polls the JavaScript expression cond in the page every 200ms until it is true, and
// fails the test with what once timeout has passed.
func (b *browser) waitJS(t *testing.T, timeout time.Duration, what, cond string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](cond))
		cancel()
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s (%v; the page says: %s)", what, timeout, err, b.notice())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// notice is the page's notice line, which says what the API last refused.
func (b *browser) notice() string {
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById("notice")?.textContent ?? ""`))
	if err != nil {
		return "(unreadable: " + err.Error() + ")"
	}
	return strconv.Quote(s)
}

// screenshot saves the whole page as a PNG at path.
func (b *browser) screenshot(t *testing.T, path string) {
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err == nil {
		err = os.WriteFile(path, png, 0o644)
	}
	if err != nil {
		t.Logf("screenshot of the status page: %v", err)
		return
	}
	t.Logf("screenshot of the status page: %s", path)
}
