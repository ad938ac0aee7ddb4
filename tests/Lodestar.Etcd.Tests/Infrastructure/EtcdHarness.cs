using Lodestar.Discovery;
using Lodestar.Etcd.Client.Internal;
using Lodestar.Etcd.Registration.Internal;
using Lodestar.Registration;
using Lodestar.Testing;
using Lodestar.Testing.Etcd;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Lodestar.Etcd.Tests.Infrastructure;

/// <summary>A Lodestar service provider wired to one etcd, with every log line captured.</summary>
internal sealed class EtcdHarness : IAsyncDisposable
{
    private EtcdHarness(ServiceProvider services, CapturingLoggerProvider logs)
    {
        Services = services;
        Logs = logs;
    }

    public ServiceProvider Services { get; }

    public CapturingLoggerProvider Logs { get; }

    public IEndpointResolver Resolver => Services.GetRequiredService<IEndpointResolver>();

    public EtcdServiceRegistrar Registrar => (EtcdServiceRegistrar)Services.GetServices<IServiceRegistrar>().Single(r => r.Name == "etcd");

    public EtcdClient Client => Services.GetRequiredService<EtcdClient>();

    public static EtcdHarness Create(EtcdServer server, Action<EtcdOptions>? configure = null, Action<IServiceCollection>? more = null)
        => Create(server.ClientUrl, configure, more);

    /// <summary>Creates a harness whose <see cref="EtcdOptions.Address"/> is <paramref name="address"/>: one URL or a comma-separated list.</summary>
    public static EtcdHarness Create(string address, Action<EtcdOptions>? configure = null, Action<IServiceCollection>? more = null)
    {
        var logs = new CapturingLoggerProvider();
        var services = new ServiceCollection();
        services.AddLogging(b => b.AddProvider(logs).SetMinimumLevel(LogLevel.Trace));
        services.AddLodestar(o => o.ResolutionTimeout = TimeSpan.FromSeconds(10)).AddEtcd(o =>
        {
            o.Address = address;
            o.Backoff.InitialDelay = TimeSpan.FromMilliseconds(100);
            o.Backoff.MaxDelay = TimeSpan.FromMilliseconds(500);
            configure?.Invoke(o);
        });
        more?.Invoke(services);
        return new EtcdHarness(services.BuildServiceProvider(new ServiceProviderOptions { ValidateOnBuild = true }), logs);
    }

    public static ServiceRegistration Instance(string service, int port, string? id = null, int ttlSeconds = 2, IReadOnlyDictionary<string, string>? metadata = null)
        => new()
        {
            ServiceName = service,
            InstanceId = id,
            Host = "127.0.0.1",
            Port = port,
            Ttl = TimeSpan.FromSeconds(ttlSeconds),
            Metadata = metadata ?? new Dictionary<string, string>(),
        };

    public ValueTask DisposeAsync() => Services.DisposeAsync();
}

/// <summary>Follows a service through <see cref="IEndpointResolver.Watch"/> and keeps the latest set.</summary>
internal sealed class SetTracker : IDisposable
{
    private readonly IDisposable _subscription;
    private volatile Lodestar.Endpoints.EndpointSet? _latest;
    private volatile Exception? _lastError;
    private int _errors;
    private int _sets;

    public SetTracker(IEndpointResolver resolver, string service)
    {
        _subscription = resolver.Watch(service, "etcd", set =>
        {
            _latest = set;
            Interlocked.Increment(ref _sets);
        }, error =>
        {
            _lastError = error;
            Interlocked.Increment(ref _errors);
        });
    }

    public Lodestar.Endpoints.EndpointSet? Latest => _latest;

    public int Errors => Volatile.Read(ref _errors);

    public Exception? LastError => _lastError;

    public int Sets => Volatile.Read(ref _sets);

    public IReadOnlyList<string> Addresses => (_latest?.Endpoints ?? []).Select(e => e.Address).Order(StringComparer.Ordinal).ToList();

    public void Dispose() => _subscription.Dispose();
}
