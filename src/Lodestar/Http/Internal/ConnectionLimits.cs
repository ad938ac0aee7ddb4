namespace Lodestar.Http.Internal;

/// <summary>
/// Counts the open connections of one client handler per service and makes a new connection wait while any service it
/// belongs to is at its <see cref="ConnectionOptions.MaxConnections"/>.
/// </summary>
/// <remarks>
/// A waiting connection never holds up the handler's pool: since .NET 6 a request takes whichever connection frees
/// first and a pending connect carries on alone, so requests keep flowing over the connections already open while a
/// connect waits here; the wait ends when a connection of the service closes, or fails when the connect timeout or
/// the handler's cancellation ends it.
/// </remarks>
internal sealed class ConnectionLimits
{
    private readonly Dictionary<string, int> _open = new(StringComparer.OrdinalIgnoreCase);
    private readonly Lock _gate = new();
    private TaskCompletionSource _released = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Gets how many open connections count against <paramref name="service"/> (tests).</summary>
    internal int CountOpen(string service)
    {
        lock (_gate)
        {
            return _open.GetValueOrDefault(service);
        }
    }

    /// <summary>Gets the first service of <paramref name="caps"/> that is at its cap, if any (for error messages).</summary>
    public (string Service, int Max)? FirstFull(IReadOnlyList<(string Service, int Max)> caps)
    {
        lock (_gate)
        {
            foreach (var cap in caps)
            {
                if (_open.GetValueOrDefault(cap.Service) >= cap.Max)
                {
                    return cap;
                }
            }

            return null;
        }
    }

    /// <summary>Takes a slot in every service of <paramref name="caps"/> at once, waiting while any is at its cap.</summary>
    public async ValueTask<Lease> AcquireAsync(IReadOnlyList<(string Service, int Max)> caps, CancellationToken cancellationToken)
    {
        while (true)
        {
            Task released;
            lock (_gate)
            {
                var full = -1;
                for (var i = 0; i < caps.Count && full < 0; i++)
                {
                    if (_open.GetValueOrDefault(caps[i].Service) >= caps[i].Max)
                    {
                        full = i;
                    }
                }

                if (full < 0)
                {
                    var services = new string[caps.Count];
                    for (var i = 0; i < caps.Count; i++)
                    {
                        services[i] = caps[i].Service;
                        _open[services[i]] = _open.GetValueOrDefault(services[i]) + 1;
                    }

                    return new Lease(this, services);
                }

                released = _released.Task;
            }

            await released.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    private void Release(string[] services)
    {
        TaskCompletionSource released;
        lock (_gate)
        {
            foreach (var service in services)
            {
                var count = _open.GetValueOrDefault(service) - 1;
                if (count <= 0)
                {
                    _open.Remove(service);
                }
                else
                {
                    _open[service] = count;
                }
            }

            released = _released;
            _released = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        }

        // Every waiter looks again; the first to find room takes it.
        released.TrySetResult();
    }

    /// <summary>The slots one connection holds; released once, when the connection closes.</summary>
    internal sealed class Lease(ConnectionLimits owner, string[] services)
    {
        private int _released;

        public void Release()
        {
            if (Interlocked.Exchange(ref _released, 1) == 0)
            {
                owner.Release(services);
            }
        }
    }
}
