package api

import (
	"context"
	"errors"
	"mime"
	"net/http"
	"strconv"

	"github.com/gorilla/mux"

	"github.com/shardns/shardns/internal/queue"
)

// Jobs is the work queue as the /jobs routes use it. *queue.Queue
// implements it.
type Jobs interface {
	Submit(ctx context.Context, items []queue.Item, source string) (*queue.Job, error)
	Job(ctx context.Context, id string) (*queue.Job, error)
	Jobs(ctx context.Context, limit int) ([]*queue.Job, error)
	Cancel(ctx context.Context, id string) (*queue.Job, error)
	Counts(ctx context.Context) (queue.Counts, error)
}

var _ Jobs = (*queue.Queue)(nil)

// The body types POST /jobs takes.
const (
	mimeJSON = "application/json"
	mimeCSV  = "text/csv"
)

// Bounds of the /jobs routes.
const (
	// maxJobBody bounds a POST /jobs body: a million names of 60 bytes.
	maxJobBody = 64 << 20
	// jobsListDefault and jobsListMax bound GET /jobs?limit=.
	jobsListDefault = 20
	jobsListMax     = 1000
)

// jobList is the GET /jobs reply.
type jobList struct {
	Jobs  []*queue.Job `json:"jobs"`
	Queue queueCounts  `json:"queue"`
}

type queueCounts struct {
	Pending    int64 `json:"pending"`
	Processing int64 `json:"processing"`
	Completed  int64 `json:"completed"`
	Dead       int64 `json:"dead"`
}

func (a *API) jobRoutes(r *mux.Router) {
	if a.jobs == nil {
		none := func(w http.ResponseWriter, _ *http.Request) {
			writeError(w, http.StatusNotFound, "no work queue here: start cacheapi with -queue-redis")
		}
		r.HandleFunc("/jobs", none).Methods(http.MethodGet, http.MethodPost)
		r.HandleFunc("/jobs/{id}", none).Methods(http.MethodGet, http.MethodDelete)
		return
	}
	r.HandleFunc("/jobs", a.jobsList).Methods(http.MethodGet)
	r.Handle("/jobs", a.mutating(http.HandlerFunc(a.jobsSubmit))).Methods(http.MethodPost)
	r.HandleFunc("/jobs/{id}", a.jobGet).Methods(http.MethodGet)
	r.Handle("/jobs/{id}", a.mutating(http.HandlerFunc(a.jobCancel))).Methods(http.MethodDelete)
}

// jobsSubmit takes a job: JSON ({"names": [...], "type": "A"} or
// {"items": [{"name": ..., "type": ...}]}) or a CSV body (text/csv);
// ?type= sets the default type of CSV rows. No other body type: text/plain,
// multipart/form-data and application/x-www-form-urlencoded are what a web
// page of another site may send without a CORS preflight.
func (a *API) jobsSubmit(w http.ResponseWriter, r *http.Request) {
	ctype, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || (ctype != mimeJSON && ctype != mimeCSV) {
		writeError(w, http.StatusUnsupportedMediaType, "Content-Type must be application/json or text/csv")
		return
	}
	var items []queue.Item
	source := "json"
	if ctype == mimeCSV {
		source = "csv"
		items, err = parseJobCSV(r.Body, r.URL.Query().Get("type"))
	} else {
		items, err = parseJobJSON(r.Body)
	}
	if err != nil {
		if tooBig(err) {
			writeError(w, http.StatusRequestEntityTooLarge, "body too large")
			return
		}
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	job, err := a.jobs.Submit(r.Context(), items, source)
	if err != nil {
		a.log.Warn("api: submit job failed", "err", err)
		writeError(w, http.StatusServiceUnavailable, "work queue unavailable")
		return
	}
	w.Header().Set("Location", "/jobs/"+job.ID)
	writeJSON(w, http.StatusAccepted, job)
}

func tooBig(err error) bool {
	var mbe *http.MaxBytesError
	return errors.As(err, &mbe)
}

func (a *API) jobsList(w http.ResponseWriter, r *http.Request) {
	limit := jobsListDefault
	if s := r.URL.Query().Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > jobsListMax {
			writeError(w, http.StatusBadRequest, "limit must be 1 to "+strconv.Itoa(jobsListMax))
			return
		}
		limit = n
	}
	jobs, err := a.jobs.Jobs(r.Context(), limit)
	if err != nil {
		a.log.Warn("api: list jobs failed", "err", err)
		writeError(w, http.StatusServiceUnavailable, "work queue unavailable")
		return
	}
	c, err := a.jobs.Counts(r.Context())
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, "work queue unavailable")
		return
	}
	writeJSON(w, http.StatusOK, jobList{Jobs: jobs, Queue: queueCounts(c)})
}

func (a *API) jobGet(w http.ResponseWriter, r *http.Request) {
	a.jobReply(w, r, a.jobs.Job)
}

func (a *API) jobCancel(w http.ResponseWriter, r *http.Request) {
	a.jobReply(w, r, a.jobs.Cancel)
}

func (a *API) jobReply(w http.ResponseWriter, r *http.Request, get func(context.Context, string) (*queue.Job, error)) {
	job, err := get(r.Context(), mux.Vars(r)["id"])
	switch {
	case errors.Is(err, queue.ErrNotFound):
		writeError(w, http.StatusNotFound, "no such job")
	case err != nil:
		a.log.Warn("api: job failed", "err", err)
		writeError(w, http.StatusServiceUnavailable, "work queue unavailable")
	default:
		writeJSON(w, http.StatusOK, job)
	}
}

// JobsOf is q as the API's Jobs, or nil (no /jobs) when q is nil.
func JobsOf(q *queue.Queue) Jobs {
	if q == nil {
		return nil
	}
	return q
}
