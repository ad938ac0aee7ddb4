using Lodestar.Consul;
using Lodestar.Discovery;
using Lodestar.Endpoints;
using Lodestar.Registration;
using Lodestar.Testing;
using Lodestar.Testing.Consul;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Lodestar.Consul.Tests.Infrastructure;

/// <summary>One Lodestar process talking to the fake agent: a service provider with the Consul source and registrar.</summary>
internal sealed class ConsulClientHost : IAsyncDisposable
{
    private ConsulClientHost(ServiceProvider services, CapturingLoggerProvider logs)
    {
        Services = services;
        Logs = logs;
    }

    public ServiceProvider Services { get; }

    public CapturingLoggerProvider Logs { get; }

    public IEndpointResolver Resolver => Services.GetRequiredService<IEndpointResolver>();

    public IServiceRegistrar Registrar => Services.GetServices<IServiceRegistrar>().Single(r => r.Name == "consul");

    public static ConsulClientHost Create(FakeConsulAgent agent, Action<ConsulOptions>? configure = null, Action<IServiceCollection>? services = null)
    {
        var logs = new CapturingLoggerProvider();
        var collection = new ServiceCollection();
        collection.AddLogging(b => b.AddProvider(logs).SetMinimumLevel(LogLevel.Trace));
        collection.AddLodestarCore().AddConsul(o =>
        {
            o.Address = agent.Address;
            o.WaitTime = TimeSpan.FromSeconds(5);
            o.Backoff.InitialDelay = TimeSpan.FromMilliseconds(50);
            o.Backoff.MaxDelay = TimeSpan.FromMilliseconds(500);
            o.RequestTimeout = TimeSpan.FromSeconds(3);
            configure?.Invoke(o);
        });
        services?.Invoke(collection);
        return new ConsulClientHost(collection.BuildServiceProvider(new ServiceProviderOptions { ValidateOnBuild = true }), logs);
    }

    /// <summary>Watches a service and records every set and error.</summary>
    public Watch Follow(string service) => new(Resolver, service);

    public ValueTask DisposeAsync() => Services.DisposeAsync();

    public sealed class Watch : IDisposable
    {
        private readonly IDisposable _subscription;
        private readonly Lock _gate = new();
        private readonly List<Exception> _errors = [];
        private EndpointSet? _current;

        public Watch(IEndpointResolver resolver, string service)
        {
            _subscription = resolver.Watch(service, "consul", set =>
            {
                lock (_gate)
                {
                    _current = set;
                    Sets++;
                }
            }, error =>
            {
                lock (_gate)
                {
                    _errors.Add(error);
                }
            });
        }

        public int Sets { get; private set; }

        public EndpointSet? Current
        {
            get
            {
                lock (_gate)
                {
                    return _current;
                }
            }
        }

        public IReadOnlyList<DiscoveredEndpoint> Endpoints => Current?.Endpoints.ToArray() ?? [];

        public IReadOnlyList<Exception> Errors
        {
            get
            {
                lock (_gate)
                {
                    return _errors.ToArray();
                }
            }
        }

        public bool Has(int port) => Endpoints.Any(e => e.Port == port);

        public void Dispose() => _subscription.Dispose();
    }
}
