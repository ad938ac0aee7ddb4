using System.Threading.Channels;
using Lodestar.Xds.Client;

namespace Lodestar.Xds.Tests.Infrastructure;

/// <summary>An xDS watcher that queues what it receives so a test can await each event in order.</summary>
internal sealed class RecordingWatcher : IXdsWatcher
{
    private readonly Channel<WatchEvent> _events = Channel.CreateUnbounded<WatchEvent>();

    public int Pending => _events.Reader.Count;

    public void OnResourceChanged(object resource) => _events.Writer.TryWrite(new WatchEvent(WatchEventKind.Changed, resource, null));

    public void OnError(Exception error) => _events.Writer.TryWrite(new WatchEvent(WatchEventKind.Error, null, error));

    public void OnResourceDoesNotExist() => _events.Writer.TryWrite(new WatchEvent(WatchEventKind.DoesNotExist, null, null));

    public async Task<WatchEvent> NextAsync(TimeSpan? timeout = null)
    {
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(10));
        try
        {
            return await _events.Reader.ReadAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            throw new TimeoutException("The watcher received nothing.");
        }
    }

    /// <summary>Waits for the next change, skipping errors (a reconnect may report one first).</summary>
    public async Task<T> NextChangeAsync<T>(TimeSpan? timeout = null)
    {
        while (true)
        {
            var next = await NextAsync(timeout);
            if (next.Kind == WatchEventKind.Changed)
            {
                return (T)next.Resource!;
            }

            Assert.NotEqual(WatchEventKind.DoesNotExist, next.Kind);
        }
    }

    /// <summary>Waits for the next event that is not a stream error.</summary>
    public async Task<WatchEvent> NextSkippingStreamErrorsAsync(TimeSpan? timeout = null)
    {
        while (true)
        {
            var next = await NextAsync(timeout);
            if (next.Kind != WatchEventKind.Error || !next.Error!.Message.Contains("stream", StringComparison.OrdinalIgnoreCase))
            {
                return next;
            }
        }
    }
}

internal enum WatchEventKind
{
    Changed,
    Error,
    DoesNotExist,
}

internal sealed record WatchEvent(WatchEventKind Kind, object? Resource, Exception? Error);
