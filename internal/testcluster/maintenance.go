package testcluster

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"
)

// Etcd maintenance, as a cluster's operators run it: the API server compacts etcd's history
// every few minutes, but the database file keeps its size until it is defragmented, and etcd
// refuses writes once the file reaches its quota (database space exceeded), however little of
// it is live. A benchmark that runs many figures on one etcd, the earlier ones writing
// gigabytes of history, maintains it between figures so that a figure meeting the quota
// meets its own data and not its predecessors'.

// CompactEtcd compacts etcd's history up to its current revision, defragments its database
// and clears a NOSPACE alarm, through etcd's JSON gateway on its client URL. It returns the
// database's size before and after.
func (c *Cluster) CompactEtcd(ctx context.Context) (before, after int64, err error) {
	u := c.env.ControlPlane.Etcd.URL
	if u == nil {
		return 0, 0, fmt.Errorf("etcd has no client URL")
	}
	base := u.String()
	var status struct {
		Header struct {
			Revision string `json:"revision"`
		} `json:"header"`
		DBSize string `json:"dbSize"`
	}
	if err := etcdCall(ctx, base+"/v3/maintenance/status", map[string]any{}, &status); err != nil {
		return 0, 0, err
	}
	before, _ = strconv.ParseInt(status.DBSize, 10, 64)
	rev, err := strconv.ParseInt(status.Header.Revision, 10, 64)
	if err != nil {
		return before, 0, fmt.Errorf("etcd's revision %q: %w", status.Header.Revision, err)
	}
	// A compaction to a revision already compacted is refused; the defragmentation still runs.
	_ = etcdCall(ctx, base+"/v3/kv/compaction", map[string]any{"revision": rev, "physical": true}, nil)
	if err := etcdCall(ctx, base+"/v3/maintenance/defragment", map[string]any{}, nil); err != nil {
		return before, 0, err
	}
	if err := etcdCall(ctx, base+"/v3/maintenance/alarm", map[string]any{"action": "DEACTIVATE", "alarm": "NOSPACE"}, nil); err != nil {
		return before, 0, err
	}
	if err := etcdCall(ctx, base+"/v3/maintenance/status", map[string]any{}, &status); err != nil {
		return before, 0, err
	}
	after, _ = strconv.ParseInt(status.DBSize, 10, 64)
	return before, after, nil
}

// etcdCall posts body as JSON to an endpoint of etcd's gateway and decodes the answer into
// out (when not nil).
func etcdCall(ctx context.Context, url string, body, out any) error {
	data, err := json.Marshal(body)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(data))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("etcd %s: %w", url, err)
	}
	defer func() { _ = res.Body.Close() }()
	answer, err := io.ReadAll(res.Body)
	if err != nil {
		return fmt.Errorf("etcd %s: %w", url, err)
	}
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("etcd %s: %s: %s", url, res.Status, answer)
	}
	if out != nil {
		if err := json.Unmarshal(answer, out); err != nil {
			return fmt.Errorf("etcd %s: %w", url, err)
		}
	}
	return nil
}
