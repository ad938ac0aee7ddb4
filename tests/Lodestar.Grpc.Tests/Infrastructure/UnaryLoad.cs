using System.Collections.Concurrent;
using Lodestar.Grpc.Tests.Protos;

namespace Lodestar.Grpc.Tests.Infrastructure;

/// <summary>
/// A steady, bounded load of unary calls: a few workers that each start a call every <c>workers / rate</c> seconds,
/// until stopped, until <c>maxCalls</c> calls were made, or until <c>maxDuration</c> passed, whichever comes first.
/// Every failure is kept with its message.
/// </summary>
internal sealed class UnaryLoad : IAsyncDisposable
{
    private readonly CancellationTokenSource _stop;
    private readonly ConcurrentQueue<string> _failures = new();
    private readonly ConcurrentDictionary<string, int> _answers = new(StringComparer.Ordinal);
    private readonly Task _run;
    private int _calls;
    private int _succeeded;

    private UnaryLoad(Echo.EchoClient client, int workers, int ratePerSecond, int maxCalls, TimeSpan maxDuration)
    {
        _stop = new CancellationTokenSource(maxDuration);
        var interval = TimeSpan.FromSeconds((double)workers / ratePerSecond);
        _run = Task.WhenAll(Enumerable.Range(0, workers).Select(_ => Task.Run(() => WorkAsync(client, interval, maxCalls))));
    }

    /// <summary>Gets the number of calls that ended, answered or failed.</summary>
    public int Calls => Succeeded + _failures.Count;

    /// <summary>Gets the number of calls answered with OK.</summary>
    public int Succeeded => Volatile.Read(ref _succeeded);

    /// <summary>Gets the failed calls' messages.</summary>
    public IReadOnlyCollection<string> Failures => _failures;

    /// <summary>Gets the number of calls each instance answered.</summary>
    public IReadOnlyDictionary<string, int> Answers => _answers;

    public static UnaryLoad Start(Echo.EchoClient client, int workers = 4, int ratePerSecond = 200, int maxCalls = 20_000, TimeSpan? maxDuration = null)
        => new(client, workers, ratePerSecond, maxCalls, maxDuration ?? TimeSpan.FromSeconds(60));

    /// <summary>Gets the number of calls <paramref name="instance"/> answered so far.</summary>
    public int AnsweredBy(string instance) => _answers.GetValueOrDefault(instance);

    /// <summary>Stops starting calls and waits for the ones in flight.</summary>
    public async Task StopAsync()
    {
        await _stop.CancelAsync();
        await _run;
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        _stop.Dispose();
    }

    private async Task WorkAsync(Echo.EchoClient client, TimeSpan interval, int maxCalls)
    {
        var token = _stop.Token;
        while (!token.IsCancellationRequested && Interlocked.Increment(ref _calls) <= maxCalls)
        {
            var started = TimeProvider.System.GetTimestamp();
            try
            {
                // The caller's own deadline only; the stop token is not passed, so a call in flight is never cut.
                var reply = await client.UnaryAsync(new EchoRequest(), deadline: DateTime.UtcNow.AddSeconds(10));
                _answers.AddOrUpdate(reply.Instance, 1, static (_, n) => n + 1);
                Interlocked.Increment(ref _succeeded);
            }
            catch (Exception ex)
            {
                _failures.Enqueue($"{ex.GetType().Name}: {ex.Message}");
            }

            // Pacing the load, not synchronisation: the next call starts one interval after this one started.
            var rest = interval - TimeProvider.System.GetElapsedTime(started);
            if (rest > TimeSpan.Zero)
            {
                try
                {
                    await Task.Delay(rest, token);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
            }
        }
    }
}
