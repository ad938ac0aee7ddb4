using System.Collections.Concurrent;
using System.Collections.Frozen;
using Lodestar.Diagnostics.Internal;
using Lodestar.Endpoints;
using Lodestar.Http.Internal;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Lodestar.Discovery.Internal;

/// <summary>
/// The process-wide endpoint cache: one <see cref="EndpointWatcher"/> per (source, service), shared by every caller.
/// </summary>
/// <remarks>
/// Disposable both ways, so that a container disposed synchronously (<c>ServiceProvider.Dispose</c>) works: the
/// synchronous path stops every watcher and waits for their loops, at most <see cref="SyncDisposeTimeout"/> in all.
/// </remarks>
internal sealed class EndpointCache : IEndpointResolver, IAsyncDisposable, IDisposable
{
    /// <summary>The longest a synchronous <see cref="Dispose"/> waits for the watchers' loops to end.</summary>
    internal static readonly TimeSpan SyncDisposeTimeout = TimeSpan.FromSeconds(10);

    private readonly IEndpointSourceProvider[] _providers;
    private readonly FrozenDictionary<string, IEndpointSourceProvider> _providersByName;
    private readonly IOptionsMonitor<LodestarOptions> _options;
    private readonly TimeProvider _timeProvider;
    private readonly ILoggerFactory _loggerFactory;
    private readonly LodestarMetrics? _metrics;
    private readonly ConnectionRetirer? _retirer;
    private readonly ConcurrentDictionary<(string Source, string Service), Lazy<EndpointWatcher>> _watchers = new();
    private readonly ConcurrentDictionary<string, string> _defaultSourceByService = new(StringComparer.Ordinal);
    private volatile bool _disposed;

    public EndpointCache(IEnumerable<IEndpointSourceProvider> providers, IOptionsMonitor<LodestarOptions> options, TimeProvider timeProvider, ILoggerFactory loggerFactory,
        LodestarMetrics? metrics = null, ConnectionRetirer? retirer = null)
    {
        _metrics = metrics;
        _retirer = retirer;
        _providers = providers.ToArray();
        _providersByName = _providers.GroupBy(p => p.Name, StringComparer.OrdinalIgnoreCase)
            .ToFrozenDictionary(g => g.Key, g => g.First(), StringComparer.OrdinalIgnoreCase);
        _options = options;
        _timeProvider = timeProvider;
        _loggerFactory = loggerFactory;
    }

    public IReadOnlyCollection<string> SourceNames => _providersByName.Keys;

    public ValueTask<EndpointSet> GetEndpointsAsync(string serviceName, string? sourceName = null, CancellationToken cancellationToken = default)
    {
        var watcher = GetWatcher(serviceName, sourceName);
        return watcher.GetAsync(_options.CurrentValue.ResolutionTimeout, cancellationToken);
    }

    public IDisposable Watch(string serviceName, string? sourceName, Action<EndpointSet> onChange, Action<Exception>? onError = null)
    {
        ArgumentNullException.ThrowIfNull(onChange);
        return GetWatcher(serviceName, sourceName).Subscribe(onChange, onError);
    }

    internal EndpointWatcher GetWatcher(string serviceName, string? sourceName)
    {
        ArgumentException.ThrowIfNullOrEmpty(serviceName);
        ObjectDisposedException.ThrowIf(_disposed, this);
        var service = serviceName.ToLowerInvariant();
        var source = sourceName ?? _options.CurrentValue.DefaultSource;
        if (source is null && !_defaultSourceByService.TryGetValue(service, out source))
        {
            source = ChooseSource(service);
        }

        var lazy = _watchers.GetOrAdd((source.ToLowerInvariant(), service), static (key, self) => new Lazy<EndpointWatcher>(
            () => self.CreateWatcher(key.Source, key.Service), LazyThreadSafetyMode.ExecutionAndPublication), this);
        try
        {
            return lazy.Value;
        }
        catch
        {
            // Do not cache a failed creation: the next caller tries again.
            _watchers.TryRemove(new KeyValuePair<(string, string), Lazy<EndpointWatcher>>((source.ToLowerInvariant(), service), lazy));
            throw;
        }
    }

    public async ValueTask DisposeAsync()
    {
        _disposed = true;
        foreach (var lazy in _watchers.Values)
        {
            if (lazy.IsValueCreated)
            {
                await lazy.Value.DisposeAsync().ConfigureAwait(false);
            }
        }

        _watchers.Clear();
    }

    public void Dispose()
    {
        _disposed = true;

        // Start stopping every watcher first (cancellation is synchronous), then wait for their loops together.
        var stopping = new List<Task>();
        foreach (var lazy in _watchers.Values)
        {
            if (lazy.IsValueCreated)
            {
                stopping.Add(lazy.Value.DisposeAsync().AsTask());
            }
        }

        _watchers.Clear();
        try
        {
            // Every await below DisposeAsync uses ConfigureAwait(false), so blocking here cannot deadlock.
            Task.WaitAll([.. stopping], SyncDisposeTimeout);
        }
        catch (AggregateException)
        {
            // A watcher's loop ended with an error while stopping: it is stopped all the same.
        }
    }

    private string ChooseSource(string service)
    {
        foreach (var provider in _providers)
        {
            var key = (provider.Name.ToLowerInvariant(), service);
            if (_watchers.ContainsKey(key))
            {
                return _defaultSourceByService.GetOrAdd(service, provider.Name);
            }

            if (provider.TryCreateSource(service, out var created))
            {
                var lazy = new Lazy<EndpointWatcher>(() => StartWatcher(service, provider.Name, created), LazyThreadSafetyMode.ExecutionAndPublication);
                _watchers.TryAdd(key, lazy);
                return _defaultSourceByService.GetOrAdd(service, provider.Name);
            }
        }

        var names = _providers.Length == 0 ? "none" : string.Join(", ", _providers.Select(p => p.Name));
        throw new EndpointResolutionException($"No endpoint source accepts service '{service}' (registered sources: {names}).") { ServiceName = service };
    }

    private EndpointWatcher CreateWatcher(string sourceName, string service)
    {
        if (!_providersByName.TryGetValue(sourceName, out var provider))
        {
            var names = _providers.Length == 0 ? "none" : string.Join(", ", _providers.Select(p => p.Name));
            throw new EndpointResolutionException($"Endpoint source '{sourceName}' for service '{service}' is not registered (registered sources: {names}).") { ServiceName = service };
        }

        if (!provider.TryCreateSource(service, out var source))
        {
            throw new EndpointResolutionException($"Endpoint source '{provider.Name}' does not serve service '{service}'.") { ServiceName = service };
        }

        return StartWatcher(service, provider.Name, source);
    }

    private EndpointWatcher StartWatcher(string service, string sourceName, IEndpointSource source)
    {
        var watcher = new EndpointWatcher(service, sourceName, source, _timeProvider, _loggerFactory.CreateLogger("Lodestar.Discovery"), _metrics, _retirer);
        watcher.Start();
        return watcher;
    }
}
