package manager

import (
	"context"
	"crypto/sha256"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/centaur-dev/workflow-operator/controllers"
)

// reviewTimeout bounds the two API calls that admit one scrape.
const reviewTimeout = 10 * time.Second

// +kubebuilder:rbac:groups=authentication.k8s.io,resources=tokenreviews,verbs=create
// +kubebuilder:rbac:groups=authorization.k8s.io,resources=subjectaccessreviews,verbs=create

// MetricsAuth is the metrics server's filter with --metrics-secure: a scrape must carry a bearer
// token that the Kubernetes API authenticates (TokenReview) and authorizes to GET the metrics
// path (SubjectAccessReview, a non-resource URL), as the kube-rbac-proxy pattern does, without
// pulling the API server's libraries into the manager. Grant it with a ClusterRole that allows
// get on nonResourceURLs ["/metrics"] (config/rbac/metrics_reader_role.yaml).
func MetricsAuth(cfg *rest.Config, httpClient *http.Client) (metricsserver.Filter, error) {
	c, err := client.New(cfg, client.Options{Scheme: controllers.NewScheme(), HTTPClient: httpClient})
	if err != nil {
		return nil, fmt.Errorf("create the client of the metrics filter: %w", err)
	}
	decisions := &decisionCache{entries: map[decisionKey]decision{}}
	return func(log logr.Logger, next http.Handler) (http.Handler, error) {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			status, err := decisions.admit(r, c)
			if err != nil {
				log.Error(err, "metrics request not admitted", "path", r.URL.Path)
			}
			if status != http.StatusOK {
				http.Error(w, http.StatusText(status), status)
				return
			}
			next.ServeHTTP(w, r)
		}), nil
	}, nil
}

// decisionTTL is how long the answer for one token and path is reused: a scraper every 15 s
// costs two API calls a minute instead of eight, and a revoked token or permission stops
// working within a minute.
const decisionTTL = time.Minute

// maxDecisions bounds the cache; past it, it starts over.
const maxDecisions = 1024

// decisionKey identifies what a decision answers: a token (by its hash), a path and a method.
type decisionKey struct {
	token        [sha256.Size]byte
	path, method string
}

// decision is an answer and when it stops counting.
type decision struct {
	status  int
	expires time.Time
}

// decisionCache remembers, for decisionTTL, the admission of scrapes by token, path and
// method. Failures to reach the API are never remembered.
type decisionCache struct {
	mu      sync.Mutex
	entries map[decisionKey]decision
}

// admit answers as the package's admit does, from the cache when it can.
func (d *decisionCache) admit(r *http.Request, c client.Client) (int, error) {
	token, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	key := decisionKey{token: sha256.Sum256([]byte(strings.TrimSpace(token))), path: r.URL.Path, method: r.Method}
	now := time.Now()
	d.mu.Lock()
	if e, ok := d.entries[key]; ok && now.Before(e.expires) {
		d.mu.Unlock()
		return e.status, nil
	}
	d.mu.Unlock()
	status, err := admit(r, c)
	if err != nil {
		return status, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.entries) >= maxDecisions {
		clear(d.entries)
	}
	d.entries[key] = decision{status: status, expires: now.Add(decisionTTL)}
	return status, nil
}

// admit answers 200 for a request whose token may GET its path, 401 for a missing or invalid
// token, 403 for one without the permission, and 500 when the API could not answer.
func admit(r *http.Request, c client.Client) (int, error) {
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || strings.TrimSpace(token) == "" {
		return http.StatusUnauthorized, nil
	}
	ctx, cancel := context.WithTimeout(r.Context(), reviewTimeout)
	defer cancel()
	review := &authenticationv1.TokenReview{Spec: authenticationv1.TokenReviewSpec{Token: strings.TrimSpace(token)}}
	if err := c.Create(ctx, review); err != nil {
		return http.StatusInternalServerError, fmt.Errorf("review the token: %w", err)
	}
	if !review.Status.Authenticated {
		return http.StatusUnauthorized, nil
	}
	user := review.Status.User
	extra := make(map[string]authorizationv1.ExtraValue, len(user.Extra))
	for k, v := range user.Extra {
		extra[k] = authorizationv1.ExtraValue(v)
	}
	access := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User: user.Username, UID: user.UID, Groups: user.Groups, Extra: extra,
		NonResourceAttributes: &authorizationv1.NonResourceAttributes{Path: r.URL.Path, Verb: strings.ToLower(r.Method)},
	}}
	if err := c.Create(ctx, access); err != nil {
		return http.StatusInternalServerError, fmt.Errorf("review access to %s: %w", r.URL.Path, err)
	}
	if !access.Status.Allowed {
		return http.StatusForbidden, nil
	}
	return http.StatusOK, nil
}
