package app

import (
	"context"
	"fmt"

	"github.com/fsnotify/fsnotify"
)

// watchConfigFile reports a write to (or rename of) the configuration file.
// Upstream kube-proxy exits then, so that it is restarted with the new file.
func watchConfigFile(ctx context.Context, path string) (<-chan error, error) {
	watcher, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("watch config file %s: %w", path, err)
	}
	if err := watcher.Add(path); err != nil {
		_ = watcher.Close()
		return nil, fmt.Errorf("watch config file %s: %w", path, err)
	}
	changed := make(chan error, 1)
	go func() {
		defer func() { _ = watcher.Close() }()
		for {
			select {
			case <-ctx.Done():
				return
			case event, ok := <-watcher.Events:
				if !ok {
					return
				}
				if event.Has(fsnotify.Write) || event.Has(fsnotify.Rename) {
					changed <- fmt.Errorf("config file %s: content of the proxy server's configuration file was updated", path)
					return
				}
			case err, ok := <-watcher.Errors:
				if !ok {
					return
				}
				changed <- fmt.Errorf("watch config file %s: %w", path, err)
				return
			}
		}
	}()
	return changed, nil
}
