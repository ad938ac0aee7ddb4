using System.Threading.Channels;
using Microsoft.Extensions.Logging;

namespace Lodestar.Xds.Client.Internal;

/// <summary>
/// Runs callbacks one at a time, in the order queued, on a background task: watchers are never called under the
/// client's lock nor concurrently (grpc-go's callback serializer).
/// </summary>
internal sealed partial class CallbackSerializer : IAsyncDisposable
{
    private readonly Channel<Action> _queue = Channel.CreateUnbounded<Action>(new UnboundedChannelOptions { SingleReader = true });
    private readonly ILogger _logger;
    private readonly Task _runner;

    public CallbackSerializer(ILogger logger)
    {
        _logger = logger;
        using (ExecutionContext.SuppressFlow())
        {
            _runner = Task.Run(RunAsync);
        }
    }

    public void Schedule(Action callback) => _queue.Writer.TryWrite(callback);

    public async ValueTask DisposeAsync()
    {
        _queue.Writer.TryComplete();
        await _runner.ConfigureAwait(false);
    }

    private async Task RunAsync()
    {
        await foreach (var callback in _queue.Reader.ReadAllAsync().ConfigureAwait(false))
        {
            try
            {
                callback();
            }
            catch (Exception ex)
            {
                Log.CallbackFailed(_logger, ex);
            }
        }
    }

    private static partial class Log
    {
        [LoggerMessage(1, LogLevel.Error, "An xDS watcher threw; the client goes on.", EventName = "XdsWatcherThrew")]
        public static partial void CallbackFailed(ILogger logger, Exception exception);
    }
}
