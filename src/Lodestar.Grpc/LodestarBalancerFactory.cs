using Grpc.Net.Client.Balancer;
using Lodestar.Grpc.Internal;
using Lodestar.Http;
using Lodestar.LoadBalancing;
using Microsoft.Extensions.Options;

namespace Lodestar.Grpc;

/// <summary>
/// A grpc-dotnet <see cref="LoadBalancerFactory"/> that balances a channel's subchannels with a Lodestar policy; one is
/// registered per name in <see cref="LodestarGrpcPolicies"/> by <c>AddLodestarGrpc()</c>.
/// </summary>
public sealed class LodestarBalancerFactory : LoadBalancerFactory
{
    private readonly string _name;
    private readonly string _policy;
    private readonly IServiceBalancing _balancing;
    private readonly IOptionsMonitor<LodestarClientOptions> _clientOptions;

    /// <summary>Initializes a factory for one of the names in <see cref="LodestarGrpcPolicies"/>.</summary>
    /// <param name="name">The balancer name, for example <see cref="LodestarGrpcPolicies.LeastRequest"/>.</param>
    /// <param name="balancing">Lodestar's balancing (registered by <c>AddLodestar()</c>).</param>
    /// <param name="clientOptions">The Lodestar client options, read by the client name in the balancer's config.</param>
    /// <exception cref="ArgumentException"><paramref name="name"/> is not a Lodestar balancer.</exception>
    public LodestarBalancerFactory(string name, IServiceBalancing balancing, IOptionsMonitor<LodestarClientOptions> clientOptions)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        ArgumentNullException.ThrowIfNull(balancing);
        ArgumentNullException.ThrowIfNull(clientOptions);
        _policy = LodestarGrpcPolicies.ToPolicy(name)
                  ?? throw new ArgumentException($"'{name}' is not a Lodestar gRPC balancer.", nameof(name));
        _name = name;
        _balancing = balancing;
        _clientOptions = clientOptions;
    }

    /// <inheritdoc/>
    public override string Name => _name;

    /// <inheritdoc/>
    public override LoadBalancer Create(LoadBalancerOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var settings = BalancerSettings.Read(_name, _policy, options.Configuration);
        var clientOptions = settings.Client is { } client ? _clientOptions.Get(client) : null;
        return new LodestarLoadBalancer(options.Controller, options.LoggerFactory, _balancing, settings, clientOptions);
    }
}
