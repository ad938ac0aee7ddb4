using Grpc.Net.Client;
using Lodestar.Discovery;
using Lodestar.Http;
using Lodestar.LoadBalancing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Lodestar.Grpc.Tests;

public sealed class PublicApiTests
{
    [Fact]
    public void PublicEntryPoints_NullArguments_ThrowArgumentNullNamingTheParameter()
    {
        using var provider = new ServiceCollection().AddLogging().AddLodestarGrpc().BuildServiceProvider();
        var balancing = provider.GetRequiredService<IServiceBalancing>();
        var options = provider.GetRequiredService<IOptionsMonitor<LodestarClientOptions>>();

        AssertNull("resolver", () => new LodestarResolverFactory(null!));
        AssertNull("options", () => new LodestarResolverFactory(provider.GetRequiredService<IEndpointResolver>()).Create(null!));
        AssertNull("balancing", () => new LodestarBalancerFactory(LodestarGrpcPolicies.RoundRobin, null!, options));
        AssertNull("clientOptions", () => new LodestarBalancerFactory(LodestarGrpcPolicies.RoundRobin, balancing, null!));
        AssertNull("options", () => new LodestarBalancerFactory(LodestarGrpcPolicies.RoundRobin, balancing, options).Create(null!));
        AssertNull("options", () => LodestarGrpcChannelOptionsExtensions.UseLodestar(null!, provider));
        AssertNull("services", () => new GrpcChannelOptions().UseLodestar(null!));
        AssertNull("services", () => LodestarGrpcServiceCollectionExtensions.AddLodestarGrpc(null!));
        AssertNull("builder", () => LodestarGrpcServiceCollectionExtensions.AddLodestarBalancer(null!));
        AssertNull("balancerName", () => LodestarGrpcPolicies.CreateConfig(null!));
        AssertNull("exception", () => EndpointOutcomes.FromException(null!));
        AssertNull("response", () => EndpointOutcomes.ObserveGrpcResponse(null!, new GrpcStatusOptions(), (_, _) => { }, null));
    }

    [Fact]
    public void LodestarBalancerFactory_NameNotLodestars_ThrowsNamingIt()
    {
        using var provider = new ServiceCollection().AddLogging().AddLodestarGrpc().BuildServiceProvider();

        var error = Assert.Throws<ArgumentException>(() => new LodestarBalancerFactory("pick_first", provider.GetRequiredService<IServiceBalancing>(),
            provider.GetRequiredService<IOptionsMonitor<LodestarClientOptions>>()));

        Assert.Contains("'pick_first'", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void UseLodestar_HttpClientSet_ThrowsBecauseItsChainCannotBeExtended()
    {
        using var provider = new ServiceCollection().AddLogging().AddLodestarGrpc().BuildServiceProvider();
        using var http = new HttpClient();

        var error = Assert.Throws<InvalidOperationException>(() => new GrpcChannelOptions { HttpClient = http }.UseLodestar(provider));

        Assert.Contains("HttpClient", error.Message, StringComparison.Ordinal);
    }

    private static void AssertNull(string parameter, Action act)
        => Assert.Equal(parameter, Assert.Throws<ArgumentNullException>(act).ParamName);
}
