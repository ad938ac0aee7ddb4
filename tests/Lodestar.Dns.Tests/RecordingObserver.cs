using System.Threading.Channels;
using Lodestar.Discovery;
using Lodestar.Endpoints;

namespace Lodestar.Dns.Tests;

/// <summary>Records what a source publishes and reports; a test awaits each event in order.</summary>
internal sealed class RecordingObserver : IEndpointObserver
{
    private readonly Channel<object> _events = Channel.CreateUnbounded<object>();
    private readonly List<IReadOnlyList<DiscoveredEndpoint>> _sets = [];
    private readonly List<Exception> _errors = [];

    public IReadOnlyList<IReadOnlyList<DiscoveredEndpoint>> Sets
    {
        get
        {
            lock (_sets)
            {
                return [.. _sets];
            }
        }
    }

    public IReadOnlyList<Exception> Errors
    {
        get
        {
            lock (_errors)
            {
                return [.. _errors];
            }
        }
    }

    public void OnEndpoints(IReadOnlyList<DiscoveredEndpoint> endpoints)
    {
        IReadOnlyList<DiscoveredEndpoint> copy = [.. endpoints];
        lock (_sets)
        {
            _sets.Add(copy);
        }

        _events.Writer.TryWrite(copy);
    }

    public void OnError(Exception error)
    {
        lock (_errors)
        {
            _errors.Add(error);
        }

        _events.Writer.TryWrite(error);
    }

    /// <summary>Waits (at most 10 s of real time) for the next published set, failing on an error in between.</summary>
    public async Task<IReadOnlyList<DiscoveredEndpoint>> NextSetAsync()
        => await NextAsync() switch
        {
            IReadOnlyList<DiscoveredEndpoint> set => set,
            Exception error => throw new InvalidOperationException("Expected endpoints, got an error: " + error.Message, error),
            var other => throw new InvalidOperationException("Unexpected event " + other),
        };

    /// <summary>Waits (at most 10 s of real time) for the next reported error, failing on a set in between.</summary>
    public async Task<Exception> NextErrorAsync()
        => await NextAsync() switch
        {
            Exception error => error,
            var other => throw new InvalidOperationException("Expected an error, got " + other),
        };

    /// <summary>Gets whether an event arrived that no test has read.</summary>
    public bool HasUnread => _events.Reader.Count > 0;

    private async Task<object> NextAsync()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        try
        {
            return await _events.Reader.ReadAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            throw new TimeoutException("The source published nothing and reported nothing.");
        }
    }
}
