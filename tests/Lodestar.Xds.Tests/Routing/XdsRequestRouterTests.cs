using Lodestar.Xds.Routing;
using Lodestar.Xds.Routing.Internal;

namespace Lodestar.Xds.Tests.Routing;

public sealed class XdsRequestRouterTests
{
    [Fact]
    public void ToRetryPolicy_5xxAndRetriableCodes_MapsAttemptsCodesAndBackoff()
    {
        var policy = new XdsRetryPolicy(["5xx", "retriable-status-codes", "reset"], 2, TimeSpan.FromMilliseconds(300), TimeSpan.FromMilliseconds(25),
            TimeSpan.FromMilliseconds(250), [429]);

        var mapped = XdsRequestRouter.ToRetryPolicy(policy);

        Assert.Equal(3, mapped.MaxAttempts);
        Assert.Equal(101, mapped.RetryOnStatusCodes.Count);
        Assert.Equal(429, mapped.RetryOnStatusCodes[0]);
        Assert.Equal(599, mapped.RetryOnStatusCodes[^1]);
        Assert.Equal(TimeSpan.FromMilliseconds(25), mapped.BackoffBase);
        Assert.Equal(TimeSpan.FromMilliseconds(250), mapped.BackoffMax);
        Assert.Equal(TimeSpan.FromMilliseconds(300), mapped.PerTryTimeout);
    }

    [Fact]
    public void ToRetryPolicy_GatewayErrorAndManyRetries_CapsAttemptsAtTen()
    {
        var policy = new XdsRetryPolicy(["gateway-error"], 50, null, TimeSpan.FromMilliseconds(25), TimeSpan.FromMilliseconds(250), []);

        var mapped = XdsRequestRouter.ToRetryPolicy(policy);

        Assert.Equal(10, mapped.MaxAttempts);
        Assert.Equal([502, 503, 504], mapped.RetryOnStatusCodes);
        Assert.Null(mapped.PerTryTimeout);
    }

    [Fact]
    public void Compute_HeaderThenCookieNotTerminal_JoinsBothValues()
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, "http://orders/cart?user=q");
        request.Headers.Add("x-user", "alice");
        request.Headers.Add("Cookie", "theme=dark; session=s-42");

        var key = HashKeys.Compute([new XdsHashPolicy(XdsHashPolicyKind.Header, "x-user", false), new XdsHashPolicy(XdsHashPolicyKind.Cookie, "session", false)], request);

        Assert.Equal("alice\ns-42", key);
    }

    [Fact]
    public void Compute_TerminalPolicyFindsAValue_StopsThere()
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, "http://orders/cart?user=bob%20b&x=1");
        request.Headers.Add("x-user", "alice");

        var key = HashKeys.Compute([new XdsHashPolicy(XdsHashPolicyKind.QueryParameter, "user", true), new XdsHashPolicy(XdsHashPolicyKind.Header, "x-user", false)], request);

        Assert.Equal("bob b", key);
    }

    [Fact]
    public void Compute_NoPolicyFindsAValue_ReturnsNull()
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, "http://orders/cart");

        var key = HashKeys.Compute([new XdsHashPolicy(XdsHashPolicyKind.Header, "x-user", false), new XdsHashPolicy(XdsHashPolicyKind.SourceIp, null, false)], request);

        Assert.Null(key);
    }
}
