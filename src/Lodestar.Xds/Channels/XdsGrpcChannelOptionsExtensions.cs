using Grpc.Net.Client;
using Lodestar.Http;
using Lodestar.Xds.Channels.Internal;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace Lodestar.Xds.Channels;

/// <summary>Sets up a <see cref="GrpcChannelOptions"/> for an <c>xds:///&lt;listener&gt;</c> channel.</summary>
public static class XdsGrpcChannelOptionsExtensions
{
    /// <summary>
    /// Makes the channel follow its listener with Lodestar's xDS resolver and apply what its routes say per call: sets
    /// <see cref="GrpcChannelOptions.ServiceProvider"/> (where <c>AddXds()</c> registered the resolver) and wraps the
    /// channel's handler (a new <see cref="SocketsHttpHandler"/> when none is set) so that each call's <c>grpc-status</c>
    /// reaches the cluster's outlier detection, the route's <c>max_stream_duration</c> caps the call's deadline and its
    /// retry policy retries the call. Without it a channel whose <c>ServiceProvider</c> is set still resolves and
    /// balances, but a call's outcome is only whether its response headers arrived. Credentials stay the caller's choice.
    /// </summary>
    /// <param name="options">The channel options.</param>
    /// <param name="services">The service provider where Lodestar and <c>AddXds()</c> are registered.</param>
    /// <param name="clientName">
    /// The Lodestar client whose <see cref="LodestarClientOptions.Grpc"/> says which statuses count as failures of the
    /// endpoint (<c>Lodestar:Clients:&lt;name&gt;:Grpc:FailureStatusCodes</c>; default <c>UNAVAILABLE</c> alone), or
    /// <see langword="null"/> for the unnamed options.
    /// </param>
    /// <returns>The same options.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="options"/> or <paramref name="services"/> is <see langword="null"/>.</exception>
    /// <exception cref="InvalidOperationException"><see cref="GrpcChannelOptions.HttpClient"/> is set: its handler chain cannot be extended.</exception>
    public static GrpcChannelOptions UseXds(this GrpcChannelOptions options, IServiceProvider services, string? clientName = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(services);
        if (options.HttpClient is not null)
        {
            throw new InvalidOperationException("GrpcChannelOptions.HttpClient is set; the xDS channel needs to extend the channel's handler: set HttpHandler instead.");
        }

        options.ServiceProvider = services;
        if (options.HttpHandler is XdsCallHandler)
        {
            return options;
        }

        var monitor = services.GetService<IOptionsMonitor<LodestarClientOptions>>();
        var name = clientName ?? Options.DefaultName;
        var fallback = new GrpcStatusOptions();
        Func<GrpcStatusOptions> grpc = monitor is null ? () => fallback : () => monitor.Get(name).Grpc;
        var timeProvider = services.GetService<TimeProvider>() ?? TimeProvider.System;
        var logger = (services.GetService<ILoggerFactory>() ?? NullLoggerFactory.Instance).CreateLogger("Lodestar.Xds.Channel");
        options.HttpHandler = new XdsCallHandler(options.HttpHandler ?? CreateDefaultHandler(), grpc, timeProvider, Random.Shared.NextDouble, logger);
        return options;
    }

    /// <summary>The transport for balanced channels: a subchannel per endpoint needs <see cref="SocketsHttpHandler"/>.</summary>
    private static SocketsHttpHandler CreateDefaultHandler() => new()
    {
        EnableMultipleHttp2Connections = true,
        KeepAlivePingDelay = TimeSpan.FromSeconds(30),
        KeepAlivePingTimeout = TimeSpan.FromSeconds(10),
        KeepAlivePingPolicy = HttpKeepAlivePingPolicy.WithActiveRequests,
        ConnectTimeout = TimeSpan.FromSeconds(3),
    };
}
