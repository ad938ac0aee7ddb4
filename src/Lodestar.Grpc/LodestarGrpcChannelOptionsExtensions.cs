using Grpc.Net.Client;
using Grpc.Net.Client.Configuration;
using Lodestar.Grpc.Internal;

namespace Lodestar.Grpc;

/// <summary>Sets up a <see cref="GrpcChannelOptions"/> for a <c>lodestar:///service</c> channel balanced by Lodestar.</summary>
public static class LodestarGrpcChannelOptionsExtensions
{
    /// <summary>
    /// Makes the channel resolve and balance with Lodestar: sets <see cref="GrpcChannelOptions.ServiceProvider"/> (where
    /// <c>AddLodestarGrpc()</c> registered the resolver and balancers), selects the balancer in the service config, and
    /// wraps the channel's handler (a new <see cref="SocketsHttpHandler"/> when none is set) so that each call's
    /// <c>grpc-status</c> reaches outlier detection and breakers. Credentials stay the caller's choice:
    /// <see cref="global::Grpc.Core.ChannelCredentials.Insecure"/> for h2c, <see cref="global::Grpc.Core.ChannelCredentials.SecureSsl"/> for TLS.
    /// </summary>
    /// <param name="options">The channel options.</param>
    /// <param name="services">The service provider with Lodestar and <c>AddLodestarGrpc()</c> registered.</param>
    /// <param name="balancerName">A name from <see cref="LodestarGrpcPolicies"/>; default <see cref="LodestarGrpcPolicies.RoundRobin"/>.</param>
    /// <param name="clientName">The Lodestar client whose options apply (<c>Lodestar:Clients:&lt;name&gt;</c>), or <see langword="null"/>.</param>
    /// <param name="hashHeader">For <see cref="LodestarGrpcPolicies.RingHash"/> and <see cref="LodestarGrpcPolicies.Maglev"/>: the metadata header that is the hash key, or <see langword="null"/>.</param>
    /// <returns>The same options.</returns>
    /// <exception cref="InvalidOperationException"><see cref="GrpcChannelOptions.HttpClient"/> is set: its handler chain cannot be extended.</exception>
    public static GrpcChannelOptions UseLodestar(this GrpcChannelOptions options, IServiceProvider services, string balancerName = LodestarGrpcPolicies.RoundRobin,
        string? clientName = null, string? hashHeader = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(services);
        if (options.HttpClient is not null)
        {
            throw new InvalidOperationException("GrpcChannelOptions.HttpClient is set; Lodestar needs to extend the channel's handler: set HttpHandler instead.");
        }

        var config = LodestarGrpcPolicies.CreateConfig(balancerName, clientName, hashHeader);
        options.ServiceProvider = services;
        options.ServiceConfig ??= new ServiceConfig();
        options.ServiceConfig.LoadBalancingConfigs.Clear();
        options.ServiceConfig.LoadBalancingConfigs.Add(config);
        if (options.HttpHandler is not GrpcOutcomeHandler)
        {
            options.HttpHandler = new GrpcOutcomeHandler(options.HttpHandler ?? CreateDefaultHandler());
        }

        return options;
    }

    /// <summary>The transport for balanced channels: a subchannel per endpoint needs <see cref="SocketsHttpHandler"/>.</summary>
    internal static SocketsHttpHandler CreateDefaultHandler() => new()
    {
        EnableMultipleHttp2Connections = true,
        KeepAlivePingDelay = TimeSpan.FromSeconds(30),
        KeepAlivePingTimeout = TimeSpan.FromSeconds(10),
        KeepAlivePingPolicy = HttpKeepAlivePingPolicy.WithActiveRequests,
        ConnectTimeout = TimeSpan.FromSeconds(3),
    };
}
