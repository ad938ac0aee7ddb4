using Lodestar.Kubernetes.Discovery.Internal;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Lodestar.Kubernetes.DependencyInjection.Internal;

/// <summary>Checks <see cref="KubernetesSourceOptions"/> at startup, naming each bad option.</summary>
internal sealed class KubernetesSourceOptionsValidator : IValidateOptions<KubernetesSourceOptions>
{
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

        if (options.TokenRefreshInterval < TimeSpan.FromSeconds(1) || options.TokenRefreshInterval > TimeSpan.FromHours(1))
        {
            failures.Add($"{Prefix}{nameof(options.TokenRefreshInterval)} is {options.TokenRefreshInterval}; it must be between 1 second and 1 hour.");
        }

        if (options.RetryInitialDelay < TimeSpan.FromMilliseconds(10) || options.RetryInitialDelay > TimeSpan.FromMinutes(1))
        {
            failures.Add($"{Prefix}{nameof(options.RetryInitialDelay)} is {options.RetryInitialDelay}; it must be between 10 ms and 1 minute.");
        }

        if (options.RetryMaxDelay < options.RetryInitialDelay || options.RetryMaxDelay > TimeSpan.FromMinutes(10))
        {
            failures.Add($"{Prefix}{nameof(options.RetryMaxDelay)} is {options.RetryMaxDelay}; it must be at least {nameof(options.RetryInitialDelay)} and at most 10 minutes.");
        }

        if (options.BackoffResetAfter < TimeSpan.Zero || options.BackoffResetAfter > TimeSpan.FromHours(1))
        {
            failures.Add($"{Prefix}{nameof(options.BackoffResetAfter)} is {options.BackoffResetAfter}; it must be between 0 and 1 hour.");
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
