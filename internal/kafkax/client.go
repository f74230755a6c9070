package kafkax

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"
)

// Client is one role's connection to the cluster through kafka-go: one
// Transport (one pool of connections, each with one TLS and SASL
// handshake) that the role's admin calls and every Writer it makes share
// for the role's life. Every admin call returns within
// Config.AdminTimeout. Its methods are safe for concurrent use. (Readers
// stay on franz-go's kgo, with a client each: see Reader.)
//
// The Transport answers metadata requests from a cache it refreshes every
// 10 s at most, and at once for the topics this client creates; a topic
// another client created moments ago may take that long to appear in
// Partitions.
type Client struct {
	cfg Config
	tr  *kafka.Transport
	kc  *kafka.Client
}

// NewClient returns the Client of cfg. It connects lazily (the first
// request dials the brokers); the caller closes it after the writers it
// made.
func NewClient(cfg Config) (*Client, error) {
	cfg.setDefaults()
	tr, err := cfg.Transport()
	if err != nil {
		return nil, err
	}
	return &Client{cfg: cfg, tr: tr, kc: &kafka.Client{Addr: kafka.TCP(cfg.Brokers...), Transport: tr, Timeout: cfg.AdminTimeout}}, nil
}

// Config returns the client's connection settings, defaults filled in.
func (c *Client) Config() Config { return c.cfg }

// Close closes the client's connections. Close the writers it made first:
// a connection in use is closed once it is idle.
func (c *Client) Close() { c.tr.CloseIdleConnections() }

// bound returns ctx bounded by the admin timeout; done turns that
// deadline, when it is what ended the call, into an error that says so.
func (c *Client) bound(ctx context.Context, op string) (context.Context, func(error) error) {
	bctx, cancel := context.WithTimeout(ctx, c.cfg.AdminTimeout)
	return bctx, func(err error) error {
		defer cancel()
		if err == nil {
			return nil
		}
		err = c.cfg.Explain(err)
		if ctx.Err() == nil && bctx.Err() != nil {
			return fmt.Errorf("%s: no answer within %s: %w", op, c.cfg.AdminTimeout, err)
		}
		return fmt.Errorf("%s: %w", op, err)
	}
}

// EnsureTopics creates each topic that does not exist yet and waits until
// every one has a leader per partition. A topic that already exists is
// fine, whatever its settings.
func (c *Client) EnsureTopics(ctx context.Context, specs ...TopicSpec) error {
	ctx, done := c.bound(ctx, "create topics")
	return done(c.ensureTopics(ctx, specs))
}

func (c *Client) ensureTopics(ctx context.Context, specs []TopicSpec) error {
	// kafka-go reports a connection that fails (a refused SASL credential
	// in particular) from CreateTopics as "broker not available", since it
	// cannot learn the controller: ask for metadata first, whose error
	// Explain can turn into the real cause.
	if _, err := c.kc.Metadata(ctx, &kafka.MetadataRequest{}); err != nil {
		return err
	}
	req := &kafka.CreateTopicsRequest{}
	for _, s := range specs {
		req.Topics = append(req.Topics, s.topicConfig())
	}
	resp, err := c.kc.CreateTopics(ctx, req)
	if err != nil {
		return err
	}
	for name, terr := range resp.Errors {
		if terr != nil && !errors.Is(terr, kafka.TopicAlreadyExists) {
			return fmt.Errorf("topic %s: %w", name, terr)
		}
	}
	// Wait until the metadata shows every topic with leaders, so the first
	// produce does not race topic creation.
	names := make([]string, len(specs))
	for i, s := range specs {
		names[i] = s.Name
	}
	for {
		ok, err := c.topicsReady(ctx, names)
		if err == nil && ok {
			return nil
		}
		select {
		case <-ctx.Done():
			if err != nil {
				return fmt.Errorf("wait for topics: %w", err)
			}
			return fmt.Errorf("wait for topics %s: %w", strings.Join(names, ", "), ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (c *Client) topicsReady(ctx context.Context, names []string) (bool, error) {
	md, err := c.kc.Metadata(ctx, &kafka.MetadataRequest{Topics: names})
	if err != nil {
		return false, err
	}
	if len(md.Topics) != len(names) {
		return false, nil
	}
	for _, t := range md.Topics {
		if t.Error != nil || len(t.Partitions) == 0 {
			return false, t.Error
		}
		for _, p := range t.Partitions {
			if p.Error != nil || p.Leader.Host == "" {
				return false, nil
			}
		}
	}
	return true, nil
}

// Partitions returns the partition ids of topic, sorted. A topic that does
// not exist is an *UnknownTopicError (confirmed with the broker when the
// metadata cache does not know the topic).
func (c *Client) Partitions(ctx context.Context, topic string) ([]int, error) {
	ctx, done := c.bound(ctx, "metadata "+topic)
	for {
		md, err := c.kc.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
		if err != nil {
			return nil, done(err)
		}
		for _, t := range md.Topics {
			if t.Name != topic || t.Error != nil {
				continue
			}
			ps := make([]int, 0, len(t.Partitions))
			for _, p := range t.Partitions {
				ps = append(ps, p.ID)
			}
			sort.Ints(ps)
			return ps, done(nil)
		}
		// Not in the cache: the broker says whether it exists.
		if _, err := c.topicConfig(ctx, topic, "cleanup.policy"); err != nil {
			var ue *UnknownTopicError
			if errors.As(err, &ue) {
				done(nil)
				return nil, ue
			}
			return nil, done(err)
		}
		// It exists; the cache learns of it at its next refresh.
		select {
		case <-ctx.Done():
			return nil, done(fmt.Errorf("topic exists but its metadata did not arrive: %w", ctx.Err()))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Where a topic's record-batch limit came from (TopicLimit.Source).
const (
	LimitFromTopic   = "topic config"
	LimitFromBroker  = "broker config"
	LimitFromDefault = "default"
	LimitFromOption  = "option"
)

// TopicLimit is the largest record batch a topic accepts.
type TopicLimit struct {
	// Bytes is max.message.bytes.
	Bytes int
	// Source says where Bytes came from: LimitFromTopic (the topic's
	// configuration, which includes the broker's default), LimitFromBroker
	// (the broker's message.max.bytes, when the topic's could not be read),
	// LimitFromDefault (Config.MaxMessageBytes, when neither could) or
	// LimitFromOption (WriterOptions.MaxMessageBytes).
	Source string
	// Err, with LimitFromDefault, is why the broker's figures were not
	// used.
	Err error
}

// MaxMessageBytes returns topic's max.message.bytes as the broker reports
// it (DescribeConfigs of the topic, which includes the broker's default),
// else the broker's message.max.bytes, else Config.MaxMessageBytes: a
// look-up refused by an ACL or unanswered falls back, with the reason in
// TopicLimit.Err. A topic that does not exist is an *UnknownTopicError and
// a refused credential an *AuthError.
func (c *Client) MaxMessageBytes(ctx context.Context, topic string) (TopicLimit, error) {
	ctx, done := c.bound(ctx, "max.message.bytes of "+topic)
	v, err := c.topicConfig(ctx, topic, "max.message.bytes")
	if err == nil {
		if n, perr := strconv.Atoi(v); perr == nil && n > 0 {
			return TopicLimit{Bytes: n, Source: LimitFromTopic}, done(nil)
		}
		err = fmt.Errorf("max.message.bytes %q is not a positive number", v)
	}
	if ue, ok := errors.AsType[*UnknownTopicError](err); ok {
		done(nil)
		return TopicLimit{}, ue
	}
	if errors.Is(c.cfg.Explain(err), ErrAuth) && !isAuthorization(err) {
		return TopicLimit{}, done(err)
	}
	topicErr := err
	if n, err := c.brokerMaxMessageBytes(ctx); err == nil {
		return TopicLimit{Bytes: n, Source: LimitFromBroker, Err: topicErr}, done(nil)
	}
	done(nil)
	return TopicLimit{Bytes: c.cfg.MaxMessageBytes, Source: LimitFromDefault, Err: topicErr}, nil
}

// isAuthorization reports an ACL refusal (as opposed to a refused
// credential): the request was understood and denied.
func isAuthorization(err error) bool {
	return errors.Is(err, kafka.TopicAuthorizationFailed) || errors.Is(err, kafka.ClusterAuthorizationFailed)
}

// topicConfig returns the value of the configuration name of topic.
func (c *Client) topicConfig(ctx context.Context, topic, name string) (string, error) {
	resp, err := c.kc.DescribeConfigs(ctx, &kafka.DescribeConfigsRequest{Resources: []kafka.DescribeConfigRequestResource{
		{ResourceType: kafka.ResourceTypeTopic, ResourceName: topic, ConfigNames: []string{name}},
	}})
	if err != nil {
		return "", err
	}
	for _, r := range resp.Resources {
		if r.ResourceName != topic {
			continue
		}
		if r.Error != nil {
			if errors.Is(r.Error, kafka.UnknownTopicOrPartition) {
				return "", &UnknownTopicError{Topic: topic}
			}
			return "", r.Error
		}
		for _, e := range r.ConfigEntries {
			if e.ConfigName == name {
				return e.ConfigValue, nil
			}
		}
	}
	return "", fmt.Errorf("describe configs of %s: no %s in the answer", topic, name)
}

// brokerMaxMessageBytes returns message.max.bytes of one of the brokers.
func (c *Client) brokerMaxMessageBytes(ctx context.Context) (int, error) {
	md, err := c.kc.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{}})
	if err != nil {
		return 0, err
	}
	if len(md.Brokers) == 0 {
		return 0, errors.New("metadata lists no broker")
	}
	id := strconv.Itoa(md.Brokers[0].ID)
	resp, err := c.kc.DescribeConfigs(ctx, &kafka.DescribeConfigsRequest{Resources: []kafka.DescribeConfigRequestResource{
		{ResourceType: kafka.ResourceTypeBroker, ResourceName: id, ConfigNames: []string{"message.max.bytes"}},
	}})
	if err != nil {
		return 0, err
	}
	for _, r := range resp.Resources {
		if r.Error != nil {
			return 0, r.Error
		}
		for _, e := range r.ConfigEntries {
			if e.ConfigName == "message.max.bytes" {
				if n, err := strconv.Atoi(e.ConfigValue); err == nil && n > 0 {
					return n, nil
				}
			}
		}
	}
	return 0, errors.New("describe configs of the broker: no message.max.bytes in the answer")
}
