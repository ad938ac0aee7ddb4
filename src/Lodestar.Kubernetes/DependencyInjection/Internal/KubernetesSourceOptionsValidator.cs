using Lodestar.Kubernetes.Discovery.Internal;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Lodestar.Kubernetes.DependencyInjection.Internal;

/// <summary>Checks <see cref="KubernetesSourceOptions"/> at startup, naming each bad option.</summary>
internal sealed class KubernetesSourceOptionsValidator : IValidateOptions<KubernetesSourceOptions>
{
    internal const long MinimumBytes = 64 * 1024;
    internal const long MaximumListBytes = 2L * 1024 * 1024 * 1024;
    internal const long MaximumEventBytes = 1024L * 1024 * 1024;
    internal static readonly TimeSpan MinimumStallTimeout = TimeSpan.FromSeconds(70);

    public ValidateOptionsResult Validate(string? name, KubernetesSourceOptions options)
    {
        const string Prefix = nameof(KubernetesSourceOptions) + ".";
        var failures = new List<string>();
        if (options.Qps is < 0.1 or > 10_000 || double.IsNaN(options.Qps))
        {
            failures.Add($"{Prefix}{nameof(options.Qps)} is {options.Qps}; it must be between 0.1 and 10000.");
        }

        if (options.Burst is < 1 or > 10_000)
        {
            failures.Add($"{Prefix}{nameof(options.Burst)} is {options.Burst}; it must be between 1 and 10000.");
        }

        if (options.PageSize is < 1 or > 10_000)
        {
            failures.Add($"{Prefix}{nameof(options.PageSize)} is {options.PageSize}; it must be between 1 and 10000.");
        }

        if (options.SharedWatchSelectorLimit is < 1 or > 1_000)
        {
            failures.Add($"{Prefix}{nameof(options.SharedWatchSelectorLimit)} is {options.SharedWatchSelectorLimit}; it must be between 1 and 1000.");
        }

        if (options.TokenRefreshInterval < TimeSpan.FromSeconds(1) || options.TokenRefreshInterval > TimeSpan.FromHours(1))
        {
            failures.Add($"{Prefix}{nameof(options.TokenRefreshInterval)} is {options.TokenRefreshInterval}; it must be between 1 second and 1 hour.");
        }

        if (options.Backoff.Validate(KubernetesSourceOptions.SectionName + ":" + nameof(options.Backoff)) is { } backoff)
        {
            failures.Add(backoff);
        }

        if (options.MaxListResponseBytes is < MinimumBytes or > MaximumListBytes)
        {
            failures.Add($"{Prefix}{nameof(options.MaxListResponseBytes)} is {options.MaxListResponseBytes}; it must be between {MinimumBytes} (64 KiB) and {MaximumListBytes} (2 GiB).");
        }

        if (options.MaxWatchEventBytes is < MinimumBytes or > MaximumEventBytes)
        {
            failures.Add($"{Prefix}{nameof(options.MaxWatchEventBytes)} is {options.MaxWatchEventBytes}; it must be between {MinimumBytes} (64 KiB) and {MaximumEventBytes} (1 GiB).");
        }

        if (options.WatchStallTimeout != TimeSpan.Zero && (options.WatchStallTimeout < MinimumStallTimeout || options.WatchStallTimeout > TimeSpan.FromHours(1)))
        {
            failures.Add($"{Prefix}{nameof(options.WatchStallTimeout)} is {options.WatchStallTimeout}; it must be 0 (off) or between 70 seconds "
                         + "(more than the API server's one-minute bookmark period) and 1 hour.");
        }

        if (!Enum.IsDefined(options.Encoding))
        {
            failures.Add($"{Prefix}{nameof(options.Encoding)} is {(int)options.Encoding}; it must be Auto, Protobuf or Json.");
        }

        if (options.Namespace is not null && !KubernetesServiceName.IsDnsLabel(options.Namespace))
        {
            failures.Add($"{Prefix}{nameof(options.Namespace)} is '{options.Namespace}', which is not a valid namespace name (lowercase letters, digits and '-', at most 63).");
        }

        if (string.IsNullOrWhiteSpace(options.ClusterDomain))
        {
            failures.Add($"{Prefix}{nameof(options.ClusterDomain)} is empty.");
        }

        if (options.PortName is { } portName && string.IsNullOrWhiteSpace(portName))
        {
            failures.Add($"{Prefix}{nameof(options.PortName)} is blank; leave it unset to use the only port.");
        }

        if (!string.IsNullOrEmpty(options.KubeconfigPath) && !File.Exists(options.KubeconfigPath))
        {
            failures.Add($"{Prefix}{nameof(options.KubeconfigPath)} is '{options.KubeconfigPath}', which does not exist.");
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }
}

/// <summary>Binds <see cref="KubernetesSourceOptions"/> from <c>Lodestar:Kubernetes</c> when an <see cref="IConfiguration"/> is registered.</summary>
internal sealed class KubernetesSourceOptionsSetup(IServiceProvider services) : IConfigureOptions<KubernetesSourceOptions>
{
    public void Configure(KubernetesSourceOptions options)
        => services.GetService<IConfiguration>()?.GetSection(KubernetesSourceOptions.SectionName).Bind(options);
}
