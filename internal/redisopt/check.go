package redisopt

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// CheckTimeout bounds Check: a server that has not answered by then is
// reported unreachable.
const CheckTimeout = time.Second

// Check connects to each of addrs as a client with a's settings would,
// sends PING, and logs every server that does not answer: at error level,
// naming the address and the reason, when it refused us (wrong password,
// untrusted certificate, TLS on one side only), at warning level when it
// could not be reached. what names the servers in the log ("cache shard",
// "queue Redis"). It returns the errors by address (nil for a server that
// answered). The servers are asked at once, and Check returns within
// CheckTimeout. It never stops the caller: a server that refuses us is
// a miss on the query path, like a dead one, until it is fixed.
func Check(ctx context.Context, log *slog.Logger, what string, addrs []string, a Auth) map[string]error {
	ctx, cancel := context.WithTimeout(ctx, CheckTimeout)
	defer cancel()
	out := make(map[string]error, len(addrs))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, addr := range addrs {
		wg.Go(func() {
			err := ping(ctx, addr, a)
			mu.Lock()
			out[addr] = err
			mu.Unlock()
		})
	}
	wg.Wait()
	for _, addr := range addrs {
		report(ctx, log, what, addr, out[addr], a)
	}
	return out
}

// CheckClient is Check for a client already made (the queue's, whose
// address may be a URL carrying its own credentials): one PING on c,
// logged under c's address.
func CheckClient(ctx context.Context, log *slog.Logger, what string, c *redis.Client, a Auth) error {
	ctx, cancel := context.WithTimeout(ctx, CheckTimeout)
	defer cancel()
	err := c.Ping(ctx).Err()
	report(ctx, log, what, c.Options().Addr, err, a)
	return err
}

// report logs err, if any, as Check says.
func report(ctx context.Context, log *slog.Logger, what, addr string, err error, a Auth) {
	if err == nil {
		return
	}
	reason, refused := Reason(err, a)
	level := slog.LevelWarn
	msg := "redis: " + what + " unreachable"
	if refused {
		level = slog.LevelError
		msg = "redis: " + what + " refused us"
	}
	log.Log(context.WithoutCancel(ctx), level, msg, "addr", addr, "reason", reason, "err", err)
}

// ping sends one PING to addr on a client of its own.
func ping(ctx context.Context, addr string, a Auth) error {
	opt := &redis.Options{
		Addr: addr,
		// The dial gives up before ctx ends, so that its own error,
		// which tells more, is what Ping returns.
		Dialer:                   Dialer(CheckTimeout*3/4, a.TLS),
		DialTimeout:              CheckTimeout * 3 / 4,
		DialerRetries:            1,
		ReadTimeout:              CheckTimeout,
		WriteTimeout:             CheckTimeout,
		MaxRetries:               -1,
		PoolSize:                 1,
		DisableIdentity:          true,
		MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled},
	}
	a.Apply(opt)
	c := redis.NewClient(opt)
	defer c.Close()
	return c.Ping(ctx).Err()
}

// Reason says in a few words why err kept a client with a's settings from
// using a server, and whether the server refused it (true) or could not
// be reached (false). The hints name a's flags.
func Reason(err error, a Auth) (reason string, refused bool) {
	msg := err.Error()
	var (
		unknownCA x509.UnknownAuthorityError
		wrongHost x509.HostnameError
		invalid   x509.CertificateInvalidError
		verify    *tls.CertificateVerificationError
		notTLS    tls.RecordHeaderError
		alert     tls.AlertError
		handshake *HandshakeError
	)
	switch {
	case strings.Contains(msg, "WRONGPASS"):
		return "wrong user or password" + a.hint(" (-{flag}-user, -{flag}-password-file or ${env})"), true
	case strings.Contains(msg, "NOAUTH"):
		return "the server asks for a password and none was given" + a.hint(" (-{flag}-password-file or ${env})"), true
	case strings.Contains(msg, "NOPERM"):
		return "the user may not run PING" + a.hint(" (-{flag}-user)"), true
	case errors.As(err, &unknownCA):
		return "the server's certificate is not signed by a trusted CA" + a.hint(" (-{flag}-tls-ca)"), true
	case errors.As(err, &wrongHost):
		return "the server's certificate is not for this address", true
	case errors.As(err, &invalid):
		return "the server's certificate is not valid (expired, or not for a server)", true
	case errors.As(err, &verify):
		return "the server's certificate failed verification", true
	case errors.As(err, &notTLS):
		return "the server does not speak TLS" + a.hint(" (-{flag}-tls is set)"), true
	case errors.As(err, &alert):
		return "the server ended the TLS handshake: " + alert.Error(), true
	case errors.As(err, &handshake) && errors.Is(err, context.DeadlineExceeded):
		return "no answer to the TLS handshake: the server does not speak TLS" + a.hint(" (-{flag}-tls is set)") + ", or is frozen", false
	case a.TLS == nil && (errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET)):
		return "the server closed the connection at once: does it take TLS only?" + a.hint(" (-{flag}-tls)"), true
	}
	return "no answer: " + msg, false
}

// hint is format with {flag} replaced by a's flag prefix and {env} by its
// password variable, or "" when a came from no flags.
func (a Auth) hint(format string) string {
	if a.flag == "" {
		return ""
	}
	env := PasswordEnv
	if a.flag == "queue-redis" {
		env = QueuePasswordEnv
	}
	return strings.NewReplacer("{flag}", a.flag, "{env}", env).Replace(format)
}
