package searchsink

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/elastic/go-elasticsearch/v8"
	"github.com/opensearch-project/opensearch-go/v4"
	"github.com/opensearch-project/opensearch-go/v4/opensearchapi"

	"github.com/kubechat/kubechat/internal/chat"
	"github.com/kubechat/kubechat/internal/config"
)

// notElasticsearch is in go-elasticsearch's error for a server that fails
// its product check.
const notElasticsearch = "the server is not Elasticsearch"

// maxAnswer bounds the _bulk answer read: about 200 bytes an item.
const maxAnswer = 16 << 20

// NewElasticsearch builds an elasticsearch platform over
// go-elasticsearch/v8. It does not connect.
func NewElasticsearch(name string, raw config.Raw, d chat.Deps) (chat.Platform, error) {
	s, secrets, err := decode("elasticsearch", name, raw)
	if err != nil {
		return nil, err
	}
	cfg := elasticsearch.Config{Addresses: s.Addresses, Username: s.Username, Transport: transport(d), DisableRetry: true}
	if s.Password != nil {
		cfg.Password = s.Password.Reveal()
	}
	if s.APIKey != nil {
		cfg.APIKey = s.APIKey.Reveal()
	}
	es, err := elasticsearch.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("elasticsearch %q: %s", name, secrets.Redact(err.Error()))
	}
	return newPlatform("elasticsearch", name, s, secrets, esBulker{es}, d), nil
}

type esBulker struct{ es *elasticsearch.Client }

func (b esBulker) bulk(ctx context.Context, body []byte) (int, string, []item, error) {
	res, err := b.es.Bulk(bytes.NewReader(body), b.es.Bulk.WithContext(ctx))
	if err != nil {
		if strings.Contains(err.Error(), notElasticsearch) {
			// The client refuses a server whose 2xx answer lacks
			// "X-Elastic-Product: Elasticsearch"; asking again changes nothing.
			return 0, "", nil, chat.Permanent(errors.New("the server at settings.addresses is not Elasticsearch (its answer has no X-Elastic-Product: Elasticsearch header); for OpenSearch use the opensearch platform"))
		}
		return 0, "", nil, err
	}
	defer func() { _ = res.Body.Close() }()
	if res.StatusCode/100 != 2 {
		_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 64<<10))
		return res.StatusCode, res.Header.Get("Retry-After"), nil, nil
	}
	var answer struct {
		Items []map[string]item `json:"items"`
	}
	if err := json.NewDecoder(io.LimitReader(res.Body, maxAnswer)).Decode(&answer); err != nil {
		return res.StatusCode, "", nil, fmt.Errorf("read the bulk answer: %w", err)
	}
	items := make([]item, 0, len(answer.Items))
	for _, it := range answer.Items {
		for _, result := range it { // one action per item: {"index": {...}}
			items = append(items, result)
		}
	}
	return res.StatusCode, "", items, nil
}

// NewOpenSearch builds an opensearch platform over opensearch-go/v4. It
// does not connect.
func NewOpenSearch(name string, raw config.Raw, d chat.Deps) (chat.Platform, error) {
	s, secrets, err := decode("opensearch", name, raw)
	if err != nil {
		return nil, err
	}
	cfg := opensearch.Config{Addresses: s.Addresses, Username: s.Username, Transport: transport(d), DisableRetry: true}
	if s.Password != nil {
		cfg.Password = s.Password.Reveal()
	}
	if s.APIKey != nil {
		cfg.Header = http.Header{"Authorization": {"ApiKey " + s.APIKey.Reveal()}}
	}
	os, err := opensearchapi.NewClient(opensearchapi.Config{Client: cfg})
	if err != nil {
		return nil, fmt.Errorf("opensearch %q: %s", name, secrets.Redact(err.Error()))
	}
	return newPlatform("opensearch", name, s, secrets, osBulker{os}, d), nil
}

type osBulker struct{ os *opensearchapi.Client }

func (b osBulker) bulk(ctx context.Context, body []byte) (int, string, []item, error) {
	answer, err := b.os.Bulk(ctx, opensearchapi.BulkReq{Body: bytes.NewReader(body)})
	var res *opensearch.Response
	if answer != nil {
		res = answer.Inspect().Response
	}
	switch {
	case res == nil && err != nil:
		return 0, "", nil, err
	case res == nil:
		return 0, "", nil, fmt.Errorf("bulk: no answer")
	case res.StatusCode/100 != 2:
		return res.StatusCode, res.Header.Get("Retry-After"), nil, nil
	case err != nil:
		return res.StatusCode, "", nil, fmt.Errorf("read the bulk answer: %w", err)
	}
	items := make([]item, 0, len(answer.Items))
	for _, it := range answer.Items {
		for _, result := range it {
			r := item{ID: result.ID, Status: result.Status}
			if result.Error != nil {
				r.Error = &itemError{Type: result.Error.Type, Reason: result.Error.Reason}
			}
			items = append(items, r)
		}
	}
	return res.StatusCode, "", items, nil
}
