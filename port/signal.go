package port

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

// SignalContext is signal.NotifyContext with a typed cancel cause: the
// replies of requests a signal abandons name it ("the port received
// SIGTERM") without parsing any text. stop releases the signals.
func SignalContext(parent context.Context, sigs ...os.Signal) (ctx context.Context, stop context.CancelFunc) {
	ctx, cancel := context.WithCancelCause(parent)
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, sigs...)
	go func() {
		select {
		case sig := <-ch:
			cancel(&abandonCause{reason: "the port received " + signalName(sig)})
		case <-ctx.Done():
		}
	}()
	return ctx, func() {
		signal.Stop(ch)
		cancel(nil)
	}
}

func signalName(sig os.Signal) string {
	switch sig {
	case syscall.SIGTERM:
		return "SIGTERM"
	case os.Interrupt:
		return "SIGINT"
	}
	return sig.String()
}
